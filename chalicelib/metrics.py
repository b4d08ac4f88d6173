"""Operational metrics as CloudWatch embedded metric format (EMF) lines, through Powertools Metrics:
each call writes one JSON line to stdout, which CloudWatch Logs turns into a metric (no API call, no
extra latency). Namespace ``MicroPlatform`` (``POWERTOOLS_METRICS_NAMESPACE`` overrides it), dimension
``service`` = ``platform`` plus the one given:

- ``Deployments`` by ``outcome`` (the terminal status it ended with: ``TERMINAL`` in
  chalicelib/domain/services/deploys.py), by the deploy tasks, once per deployment;
- ``WebhookDeliveries`` by ``outcome`` (processed; duplicate: an offloaded payload settled already; failed),
  by the github-events consumer;
- ``DeadLetteredMessages`` by ``queue``: a message failed on its last receive, bound for the DLQ;
- ``Onboardings`` by ``outcome`` (active, failed), by the onboarding state machine's last steps and
  by the namespace sweeper for an onboarding it compensated itself (one it resumed is counted by the
  new execution's steps): once per namespace.

Powertools is imported on first use (cold starts); a metric that cannot be written never fails the
work it counts."""

from __future__ import annotations

import os

NAMESPACE = "MicroPlatform"


def count(name: str, dimension: str, value: str, amount: int = 1) -> None:
    """One EMF line: ``name`` += ``amount`` with ``dimension`` = ``value``."""
    try:
        from aws_lambda_powertools.metrics import MetricUnit, single_metric

        namespace = os.environ.get("POWERTOOLS_METRICS_NAMESPACE") or NAMESPACE
        with single_metric(
            name=name,
            unit=MetricUnit.Count,
            value=amount,
            namespace=namespace,
            default_dimensions={"service": "platform"},
        ) as metric:
            metric.add_dimension(name=dimension, value=value)
    except Exception:  # never fail the work for its metric
        from chalicelib.logs import get_logger

        get_logger().exception("metric not written", extra={"metric": name})
