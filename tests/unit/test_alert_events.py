"""The event types the notifier consumes: each one has a producer in the code or is listed as coming
(with the issue that brings it), the bus rule routes exactly them, and alerts never alert about
themselves."""

from __future__ import annotations

import ast
import json
from pathlib import Path

from chalicelib.domain.alerts import ALERTABLE, COMING
from chalicelib.domain.events import EVENT_TYPES
from tests.helpers import ROOT

CONSUMERS = {ROOT / "chalicelib" / "domain" / "alerts.py", ROOT / "chalicelib" / "domain" / "services" / "alerts.py"}


def produced_types() -> dict[str, list[str]]:
    """Event types the code creates (``Event.create("<type>", ...)``), with where."""
    found: dict[str, list[str]] = {}
    for directory in ("chalicelib", "functions"):
        for path in sorted((ROOT / directory).rglob("*.py")):
            if path in CONSUMERS:
                continue
            for node in ast.walk(ast.parse(path.read_text(), str(path))):
                if (
                    isinstance(node, ast.Call)
                    and isinstance(node.func, ast.Attribute)
                    and node.func.attr == "create"
                    and isinstance(node.func.value, ast.Name)
                    and node.func.value.id == "Event"
                    and node.args
                    and isinstance(node.args[0], ast.Constant)
                    and isinstance(node.args[0].value, str)
                ):
                    found.setdefault(node.args[0].value, []).append(f"{path.relative_to(ROOT)}:{node.lineno}")
    return found


def test_every_consumed_event_type_has_a_producer_or_is_listed_as_coming() -> None:
    produced = produced_types()
    orphans = [t for t in ALERTABLE if t not in produced and t not in COMING]
    assert not orphans, f"consumed but produced nowhere and not listed in COMING: {orphans}"
    arrived = {t: produced[t] for t in COMING if t in produced}
    assert not arrived, f"these have producers now: remove them from COMING: {arrived}"
    assert set(COMING) <= set(ALERTABLE)


def test_the_scan_finds_the_producers_it_should() -> None:
    produced = produced_types()
    assert any(p.startswith("chalicelib/domain/services/deploys.py") for p in produced["deployment.failed"])
    assert any(p.startswith("chalicelib/domain/services/budgets.py") for p in produced["billing.threshold_crossed"])


def test_the_bus_rule_routes_exactly_the_consumed_types_and_never_alerts_about_alerts() -> None:
    declared = json.loads(Path(ROOT / "infra" / "resources.json").read_text())
    [rule] = [r for r in declared["rules"] if r["name"] == "alerts"]
    assert rule["queue"] == "alerts"
    assert rule["event_pattern"] == {"source": ["platform"], "detail-type": list(ALERTABLE)}
    assert not [t for t in ALERTABLE if t.startswith("alert.")]
    # a consumed type the platform knows is documented; the coming ones are documented by their issues
    assert all(t in EVENT_TYPES for t in ALERTABLE if t not in COMING)
