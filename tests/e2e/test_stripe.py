"""The Stripe adapter against Stripe itself (test mode), the same code the local cloud points at its
stand-in: only ``STRIPE_API_BASE`` is unset. Off by default; run with

    STRIPE_API_KEY=sk_test_... .venv/bin/pytest -m e2e tests/e2e/test_stripe.py

It makes the catalog's meters, products and prices in that test-mode account (idempotently: found by
lookup key the next time), a customer and a subscription of its own, sends one meter event twice, reads
the invoice preview and the meter's summaries, opens a portal session (the account's portal must be
configured once in the Dashboard, docs.stripe.com/customer-management/activate-no-code-customer-portal),
then cancels the subscription and deletes the customer. A live key is refused."""

from __future__ import annotations

import os
import uuid
from datetime import UTC, datetime, timedelta

import pytest

from chalicelib.adapters.catalog import load_catalog
from chalicelib.adapters.stripe_billing import StripeBilling
from chalicelib.domain.clock import SystemClock
from chalicelib.domain.metering import MICROS, hour_of
from chalicelib.domain.ports import MeterEvent

pytestmark = pytest.mark.e2e

KEY = os.environ.get("STRIPE_API_KEY", "")


@pytest.mark.skipif(not KEY.startswith(("sk_test_", "rk_test_")), reason="needs a test-mode STRIPE_API_KEY")
def test_the_adapter_talks_to_stripe_itself_with_a_test_mode_key() -> None:
    catalog = load_catalog()
    billing = StripeBilling(KEY, catalog, SystemClock())  # no api_base: api.stripe.com
    sync = billing.sync_catalog()
    assert set(sync.meters) == set(catalog.meters)
    assert billing.sync_catalog().created == []  # the second time finds everything

    run = uuid.uuid4().hex[:12]
    customer = billing.create_customer(f"e2e-{run}", None, f"e2e-{run}-customer")
    assert billing.create_customer(f"e2e-{run}", None, f"e2e-{run}-customer") == customer  # idempotent
    try:
        hour = hour_of(datetime.now(UTC)) - timedelta(hours=1)
        subscription = billing.create_subscription(customer, "team", f"e2e-{run}-sub", start=hour)
        event = MeterEvent(
            f"e2e-{run}:requests:{hour:%Y%m%dT%H}:-:1",
            catalog.meters["requests"].event_name,
            customer,
            2_000_000 * MICROS,
            hour,
        )
        billing.report_meter_event(event)
        billing.report_meter_event(event)  # a repeat is delivered once (or refused as a duplicate): no error
        preview = billing.upcoming_invoice(subscription)
        assert preview is not None and preview.customer_id == customer
        assert billing.portal_url(customer, "https://example.com/billing").startswith("https://")
        billing.cancel_subscription(subscription, at_period_end=True)
    finally:
        billing.delete_customer(customer)
