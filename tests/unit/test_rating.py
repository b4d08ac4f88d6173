"""Rating: graduated tiers, included quantities, the base price, `max` meters, the one rounding rule
(exact per line item, rounded once, half up, to a cent) and the run-rate forecast, against totals
computed by hand to the cent."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from chalicelib.adapters.catalog import load_catalog
from chalicelib.domain.metering import MICROS, Catalog
from chalicelib.domain.rating import RatingService, forecast, forecast_quantities, price_tiers, rate, round_cents

CATALOG = load_catalog()
TEAM = CATALOG.plan("team")
STARTER = CATALOG.plan("starter")
NOVEMBER = "2026-11"  # 30 days: 720 hours


def units(n: str) -> int:
    return int(Decimal(n) * MICROS)


class Rollups:
    """The ledger's ``rollups`` in memory (the DynamoDB ledger answers it with one query)."""

    def __init__(self, quantities: dict[str, dict[str, int]]) -> None:
        self.quantities = quantities
        self.asked: list[tuple[str, str]] = []

    def rollups(self, namespace: str, period: str) -> dict[str, int]:
        self.asked.append((namespace, period))
        return dict(self.quantities.get(f"{namespace}:{period}", {}))


def amounts(rating: object) -> dict[str, int]:
    return {(i.meter or "base"): i.amount for i in rating.line_items}  # type: ignore[attr-defined]


def test_an_invoice_preview_equals_the_hand_computed_total_to_the_cent() -> None:
    # team: base $20.00; service_hours 1,000 included then 0.8 c/h; requests 10M included, then
    # 0.00004 c up to 100M, then 0.00003 c; seats 10 included then 400 c (the period's maximum).
    quantities = {"service_hours": units("1234.5"), "requests": units("123456789"), "seats": units("12")}
    rating = rate(CATALOG, TEAM, NOVEMBER, quantities)
    # service_hours: 234.5 h x 0.8 = 187.6 -> 188
    # requests: 90,000,000 x 0.00004 = 3,600 + 23,456,789 x 0.00003 = 703.70367 -> 4,303.70367 -> 4,304
    # seats: 2 x 400 = 800
    assert amounts(rating) == {"base": 2000, "service_hours": 188, "requests": 4304, "seats": 800}
    assert rating.subtotal == 7292  # $72.92
    assert rating.usage == 5292  # what a budget caps: everything but the base price
    requests = next(i for i in rating.line_items if i.meter == "requests")
    assert requests.exact == Decimal("4303.70367")
    assert [t.amount for t in requests.tiers] == [Decimal(0), Decimal("3600"), Decimal("703.70367")]
    assert [t.quantity for t in requests.tiers] == [units("10000000"), units("90000000"), units("23456789")]
    assert rating.line_items[0].kind == "base" and rating.line_items[0].description == "Team plan, 2026-11"


def test_every_meter_has_a_line_even_unused_and_included_usage_costs_nothing() -> None:
    rating = rate(CATALOG, STARTER, NOVEMBER, {"service_hours": units("750"), "seats": units("3")})
    assert amounts(rating) == {"base": 0, "service_hours": 0, "requests": 0, "seats": 0}
    assert [i.meter for i in rating.line_items] == [None, "service_hours", "requests", "seats"]


@pytest.mark.parametrize(
    ("seats", "cents"),
    [("3", 0), ("4", 500), ("5", 1000)],  # starter: 3 seats included, then 500 c each
)
def test_a_tier_boundary_belongs_to_the_lower_tier(seats: str, cents: int) -> None:
    assert amounts(rate(CATALOG, STARTER, NOVEMBER, {"seats": units(seats)}))["seats"] == cents


def test_the_boundary_between_two_priced_tiers() -> None:
    # team requests: exactly 100M ends the 0.00004 tier; the next request is priced at 0.00003
    at = rate(CATALOG, TEAM, NOVEMBER, {"requests": units("100000000")})
    over = rate(CATALOG, TEAM, NOVEMBER, {"requests": units("133333334")})
    assert amounts(at)["requests"] == 3600
    # 3,600 + 33,333,334 x 0.00003 = 3,600 + 1,000.00002 -> 4,600
    assert next(i for i in over.line_items if i.meter == "requests").exact == Decimal("4600.00002")
    assert amounts(over)["requests"] == 4600


@pytest.mark.parametrize(
    ("requests", "cents"),
    [
        ("1009999", 0),  # 9,999 x 0.00005 = 0.49995 -> 0
        ("1010000", 1),  # 0.5 -> 1: half up (banker's rounding would say 0)
        ("1030000", 2),  # 1.5 -> 2
        ("1050000", 3),  # 2.5 -> 3 (half even: 2)
    ],
)
def test_half_a_cent_rounds_up(requests: str, cents: int) -> None:
    # starter: 1,000,000 requests included, then 0.00005 c each
    assert amounts(rate(CATALOG, STARTER, NOVEMBER, {"requests": units(requests)}))["requests"] == cents


def test_a_line_item_is_rounded_once_not_per_tier() -> None:
    catalog = Catalog.from_dict(
        {
            "currency": "usd",
            "meters": [
                {"name": "m", "display_name": "M", "unit": "u", "aggregation": "sum", "ingest": True, "source": "x"}
            ],
            "plans": [
                {
                    "name": "p",
                    "display_name": "P",
                    "base_price": 0,
                    "quota": {"memory_mib": 1, "cpu_millicores": 1, "ephemeral_storage_mib": 1},
                    "prices": {
                        "m": [{"up_to": 1, "unit_amount_decimal": "0.3"}, {"up_to": None, "unit_amount_decimal": "0.3"}]
                    },
                }
            ],
        }
    )
    rating = rate(catalog, catalog.plan("p"), NOVEMBER, {"m": units("2")})
    # per tier, rounded: 0 + 0 = 0; the line exactly: 0.6 -> 1
    assert amounts(rating)["m"] == 1


def test_a_flat_amount_is_charged_once_when_usage_enters_its_tier() -> None:
    from chalicelib.domain.metering import Tier

    tiers = (Tier(10, Decimal(0)), Tier(None, Decimal("2"), flat_amount=100))
    assert price_tiers(tiers, units("10"))[0] == Decimal(0)
    assert price_tiers(tiers, units("10.5"))[0] == Decimal("101")  # 100 flat + 0.5 x 2


def test_round_cents_is_half_up() -> None:
    assert [round_cents(Decimal(x)) for x in ("0.5", "1.5", "2.5", "2.4999", "0")] == [1, 2, 3, 2, 0]


def test_the_forecast_extrapolates_sum_meters_by_the_elapsed_fraction_keeps_max_meters_and_the_base() -> None:
    now = datetime(2026, 11, 10, tzinfo=UTC)  # 216 of 720 hours elapsed
    quantities = {"service_hours": units("432"), "requests": units("6000000"), "seats": units("12")}
    projected, elapsed, length = forecast_quantities(CATALOG, NOVEMBER, quantities, now)
    assert (elapsed, length) == (timedelta(hours=216), timedelta(hours=720))
    # x 720/216: 432 h -> 1,440 h; 6M requests -> 20M; seats stay 12
    assert projected == {"service_hours": units("1440"), "requests": units("20000000"), "seats": units("12")}
    f = forecast(CATALOG, TEAM, NOVEMBER, quantities, now)
    # base 2,000 (not extrapolated) + 440 h x 0.8 = 352 + 10M x 0.00004 = 400 + seats 800
    assert f.subtotal == 3552 and f.method == "run_rate"
    # the money is not extrapolated linearly: so far only seats cost anything (2,800 in all)
    assert rate(CATALOG, TEAM, NOVEMBER, quantities).subtotal == 2800


def test_the_forecast_rounds_to_a_millionth_and_counts_at_least_an_hour() -> None:
    start = datetime(2026, 11, 1, tzinfo=UTC)
    projected, elapsed, _ = forecast_quantities(
        CATALOG, NOVEMBER, {"requests": units("1")}, start + timedelta(minutes=5)
    )
    assert elapsed == timedelta(hours=1)
    assert projected["requests"] == units("720")
    projected, _, _ = forecast_quantities(CATALOG, NOVEMBER, {"service_hours": 1}, start + timedelta(hours=7))
    assert projected["service_hours"] == 103  # 720/7 = 102.857... millionths -> 103, half up


def test_a_period_that_is_over_forecasts_what_it_used() -> None:
    quantities = {"service_hours": units("1500"), "requests": units("1"), "seats": units("2")}
    later = datetime(2026, 12, 3, tzinfo=UTC)
    assert (
        forecast(CATALOG, TEAM, NOVEMBER, quantities, later).subtotal
        == rate(CATALOG, TEAM, NOVEMBER, quantities).subtotal
    )


def test_the_rating_service_prices_the_current_period_from_one_rollups_read() -> None:
    ledger = Rollups({"acme-backend:2026-11": {"seats": units("12"), "requests": units("123456789")}})
    service = RatingService(ledger, CATALOG)  # type: ignore[arg-type]
    preview = service.preview("acme-backend", "team", datetime(2026, 11, 27, 12, tzinfo=UTC))
    assert preview.rating.period == "2026-11" and preview.rating.subtotal == 2000 + 4304 + 800
    assert preview.period_start == datetime(2026, 11, 1, tzinfo=UTC)
    assert preview.period_end == datetime(2026, 12, 1, tzinfo=UTC)
    assert ledger.asked == [("acme-backend", "2026-11")]
