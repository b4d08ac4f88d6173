"""Usage on the local cloud, through the API: ingest tokens (platform admins; shown once, hashed,
revocable), POST /v1/usage/events (an ingest token only; exactly once from 8 threads at once;
invalid events rejected by index; a body that is not a batch, too big, or not JSON), the usage
query and the plans."""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
import requests

from chalicelib.domain.clock import SystemClock
from localcloud.cloud import LocalCloud
from tests.fixtures import start_platform
from tests.functional.test_accounts import login, onboard

NS = "acme-backend"


@pytest.fixture(scope="module")
def cloud(tmp_path_factory: pytest.TempPathFactory, env_restored: None) -> Iterator[LocalCloud]:
    from chalicelib.composition import get_container, set_container
    from chalicelib.domain.ports import Region

    c = start_platform(tmp_path_factory.mktemp("usage"), SystemClock())
    assert onboard(c, login(c, "ada"), "backend")["status"] == "active"
    get_container().regions.put(Region("far-away", "aws", "Far away", "active"))
    yield c
    c.stop()
    set_container(None)


def call(
    cloud: LocalCloud, method: str, path: str, token: str | None, body: Any = None, **kw: Any
) -> requests.Response:
    headers = dict(kw.pop("headers", {}))
    if token:
        headers["Authorization"] = f"Bearer {token}"
    return requests.request(method, f"{cloud.api_url}{path}", json=body, headers=headers, timeout=60, **kw)


def post_raw(
    cloud: LocalCloud, token: str, data: bytes | str, content_type: str = "application/json"
) -> requests.Response:
    return requests.post(
        f"{cloud.api_url}/v1/usage/events",
        data=data,
        headers={"Authorization": f"Bearer {token}", "Content-Type": content_type},
        timeout=60,
    )


def mint(cloud: LocalCloud, region: str = "local", name: str = "cluster local-1") -> dict[str, Any]:
    r = call(cloud, "POST", f"/v1/regions/{region}/ingest-tokens", login(cloud, "ops"), {"name": name})
    assert r.status_code == 201, r.text
    return dict(r.json())


def at(minutes_ago: float = 1) -> str:
    return (datetime.now(UTC) - timedelta(minutes=minutes_ago)).isoformat()


def event(i: Any, **kw: Any) -> dict[str, Any]:
    return {"id": f"ev-{i}", "namespace": NS, "meter": "requests", "value": 1.5, "timestamp": at(), **kw}


def totals(cloud: LocalCloud, **query: str) -> dict[str, str]:
    r = call(cloud, "GET", f"/v1/namespaces/{NS}/usage", login(cloud, "grace"), params=query)
    assert r.status_code == 200, r.text
    return {t["meter"]: t["quantity"] for t in r.json()["totals"]}


def test_ingest_tokens_are_minted_by_platform_admins_shown_once_and_stored_as_hashes(cloud: LocalCloud) -> None:
    from chalicelib.adapters.dynamodb.ingest_tokens import IngestTokenItem

    created = mint(cloud, name="cluster a")
    assert created["token"].startswith("mp_ing_") and created["region"] == "local"
    assert set(created) == {"id", "token", "region", "name", "created_by", "created_at", "last_used_at"}
    ops = login(cloud, "ops")
    listed = call(cloud, "GET", "/v1/regions/local/ingest-tokens", ops).json()["tokens"]
    assert created["id"] in [t["id"] for t in listed]
    assert "token" not in json.dumps(listed) or all("token" not in t for t in listed)
    stored = IngestTokenItem.get(*IngestTokenItem.key(hashlib.sha256(created["token"].encode()).hexdigest()))
    assert created["token"] not in json.dumps(stored.attribute_values, default=str)
    # not a platform admin: 403; an unknown region: 404
    ada = login(cloud, "ada")
    assert call(cloud, "POST", "/v1/regions/local/ingest-tokens", ada, {"name": "x"}).status_code == 403
    assert call(cloud, "GET", "/v1/regions/local/ingest-tokens", ada).status_code == 403
    missing = call(cloud, "POST", "/v1/regions/nowhere/ingest-tokens", ops, {"name": "x"})
    assert (missing.status_code, missing.json()["error"]["code"]) == (404, "not_found")


def test_a_revoked_ingest_token_answers_401_at_once(cloud: LocalCloud) -> None:
    token = mint(cloud, name="short-lived")
    assert post_raw(cloud, token["token"], json.dumps({"events": []})).status_code == 200
    ops = login(cloud, "ops")
    assert call(cloud, "DELETE", f"/v1/regions/local/ingest-tokens/{token['id']}", ops).status_code == 204
    r = post_raw(cloud, token["token"], json.dumps({"events": []}))
    assert (r.status_code, r.json()["error"]["details"]["reason"]) == (401, "revoked")
    assert call(cloud, "DELETE", f"/v1/regions/local/ingest-tokens/{token['id']}", ops).status_code == 404
    listed = call(cloud, "GET", "/v1/regions/local/ingest-tokens", ops).json()["tokens"]
    assert token["id"] not in [t["id"] for t in listed]


def test_only_an_ingest_token_posts_usage_and_it_reaches_nothing_else(cloud: LocalCloud) -> None:
    ingest = mint(cloud)["token"]
    for who in ("ada", "ops"):  # an owner, a platform admin: users never post their own billed usage
        r = call(cloud, "POST", "/v1/usage/events", login(cloud, who), {"events": [event("user")]})
        assert (r.status_code, r.json()["error"]["details"]["needed_role"]) == (403, "ingest")
    for method, path in (("GET", "/v1/me"), ("GET", f"/v1/namespaces/{NS}/usage"), ("GET", "/v1/plans")):
        assert call(cloud, method, path, ingest).status_code == 403, path
    assert call(cloud, "POST", "/v1/usage/events", None, {"events": []}).status_code == 401


def test_the_same_events_from_eight_threads_at_once_count_once(cloud: LocalCloud) -> None:
    token = mint(cloud)["token"]
    before = totals(cloud, meter="requests").get("requests", "0")
    batch = json.dumps({"events": [event(f"conc-{i}", value=0.5, service="api") for i in range(300)]})
    answers: list[dict[str, Any]] = []
    start = threading.Barrier(8)

    def send() -> None:
        start.wait()
        r = post_raw(cloud, token, batch)
        assert r.status_code == 200, r.text
        answers.append(r.json())

    threads = [threading.Thread(target=send) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(answers) == 8
    assert sum(a["accepted"] for a in answers) == 300
    assert sum(a["duplicates"] for a in answers) == 7 * 300
    assert all(a["rejected"] == [] for a in answers)
    assert float(totals(cloud, meter="requests")["requests"]) == float(before) + 150
    again = post_raw(cloud, token, batch).json()
    assert (again["accepted"], again["duplicates"]) == (0, 300)


def test_invalid_events_are_rejected_by_index_and_the_valid_ones_counted(cloud: LocalCloud) -> None:
    token = mint(cloud)["token"]
    before = totals(cloud, meter="requests", service="edge").get("requests", "0")
    old = (datetime.now(UTC) - timedelta(days=35, minutes=1)).isoformat()
    ahead = (datetime.now(UTC) + timedelta(minutes=6)).isoformat()
    e = lambda i, value="1.25", **kw: json.dumps(event(f"mix-{i}", service="edge", **kw)).replace(  # noqa: E731
        '"value": 1.5', f'"value": {value}'
    )
    body = (
        '{"events": ['
        + ", ".join(
            [
                e(0),
                e(1, "NaN"),
                e(2, "Infinity"),
                e(3, "-Infinity"),
                e(4, "-1"),
                e(5, "0.1234567"),
                e(6, timestamp=old),
                e(7, timestamp=ahead),
                e(8, "1" * 5000),  # past Python's integer digit limit: an exact Decimal, too large
                e(9, "0.000001"),
                e(10, "2E+2"),
            ]
        )
        + "]}"
    )
    r = post_raw(cloud, token, body)
    assert r.status_code == 200, r.text
    answer = r.json()
    assert [(x["index"], x["code"]) for x in answer["rejected"]] == [
        (1, "invalid_value"),
        (2, "invalid_value"),
        (3, "invalid_value"),
        (4, "invalid_value"),
        (5, "invalid_value"),
        (6, "timestamp_out_of_range"),
        (7, "timestamp_out_of_range"),
        (8, "invalid_value"),
    ]
    assert (answer["accepted"], answer["duplicates"]) == (3, 0)
    # 1.25 + 0.000001 + 200, to the millionth, as a decimal string
    got = totals(cloud, meter="requests", service="edge")["requests"]
    assert got == str(Decimal(before) + Decimal("201.250001"))


def test_an_ingest_token_of_another_region_is_refused_per_event(cloud: LocalCloud) -> None:
    far = mint(cloud, region="far-away", name="far cluster")["token"]
    r = post_raw(cloud, far, json.dumps({"events": [event("far-1"), {**event("far-2"), "namespace": "nobody"}]}))
    assert r.status_code == 200
    assert [(x["index"], x["code"]) for x in r.json()["rejected"]] == [
        (0, "namespace_not_allowed"),
        (1, "namespace_not_allowed"),
    ]
    assert r.json()["accepted"] == 0


def test_a_body_that_is_not_a_batch_is_400_and_over_a_thousand_events_413(cloud: LocalCloud) -> None:
    token = mint(cloud)["token"]
    for body, code in (
        ("[]", "invalid_batch"),
        ('{"events": {}}', "invalid_batch"),
        ('{"events": [], "extra": 1}', "invalid_batch"),
        ("", "invalid_batch"),
        ("{not json", "invalid_json"),
        ("[" * 100_000 + "]" * 100_000, "invalid_json"),
    ):
        r = post_raw(cloud, token, body)
        assert (r.status_code, r.json()["error"]["code"]) == (400, code), (body[:20], r.text)
        assert set(r.json()["error"]) == {"code", "message", "details"}
    r = post_raw(cloud, token, json.dumps({"events": [event(i) for i in range(1001)]}))
    assert (r.status_code, r.json()["error"]["code"], r.json()["error"]["details"]["limit"]) == (
        413,
        "payload_too_large",
        1000,
    )
    assert post_raw(cloud, token, "{}", content_type="text/plain").status_code == 415


def test_usage_answers_series_and_totals_by_hour_and_by_day(cloud: LocalCloud) -> None:
    token = mint(cloud)["token"]
    now = datetime.now(UTC)
    two_hours_ago = (now - timedelta(hours=2)).isoformat()
    events = [
        event("q-1", service="shop", value=2, timestamp=two_hours_ago),
        event("q-2", service="shop", value=0.5),
        {**event("q-3", service="shop", value=0.75), "meter": "service_hours"},
    ]
    assert post_raw(cloud, token, json.dumps({"events": events})).json()["accepted"] == 3
    grace = login(cloud, "grace")
    since = (now - timedelta(hours=3)).isoformat()
    r = call(cloud, "GET", f"/v1/namespaces/{NS}/usage", grace, params={"service": "shop", "from": since})
    assert r.status_code == 200, r.text
    body = r.json()
    assert set(body) == {"from", "to", "granularity", "series", "totals"}
    assert body["granularity"] == "hour" and body["from"].endswith(":00:00Z")
    hours = {(p["meter"], p["start"]): p["quantity"] for p in body["series"]}
    assert all(p["service"] == "shop" for p in body["series"])
    hour_of = lambda iso: datetime.fromisoformat(iso).strftime("%Y-%m-%dT%H:00:00Z")  # noqa: E731
    assert hours[("requests", hour_of(two_hours_ago))] == "2"
    assert hours[("service_hours", hour_of(at()))] == "0.75"
    assert {t["meter"]: t["quantity"] for t in body["totals"]} == {
        "requests": "2.5",
        "seats": "0",
        "service_hours": "0.75",
    }
    day = call(
        cloud,
        "GET",
        f"/v1/namespaces/{NS}/usage",
        grace,
        params={"service": "shop", "granularity": "day", "meter": "requests", "from": two_hours_ago, "to": ""},
    ).json()
    assert day["granularity"] == "day" and day["from"].endswith("T00:00:00Z")
    assert sum(float(p["quantity"]) for p in day["series"]) == 2.5
    assert all(p["start"].endswith("T00:00:00Z") for p in day["series"])
    assert day["totals"] == [{"meter": "requests", "quantity": "2.5"}]
    empty = call(
        cloud,
        "GET",
        f"/v1/namespaces/{NS}/usage",
        grace,
        params={"meter": "", "service": "", "from": "", "to": "", "granularity": ""},
    )
    assert empty.status_code == 200 and empty.json()["granularity"] == "hour"
    assert empty.json()["from"] == now.strftime("%Y-%m-01T00:00:00Z")  # the current period
    bad = call(cloud, "GET", f"/v1/namespaces/{NS}/usage", grace, params={"granularity": "week"})
    assert (bad.status_code, bad.json()["error"]["details"]["fields"][0]["field"]) == (422, "granularity")
    assert call(cloud, "GET", "/v1/namespaces/acme-frontend/usage", grace).status_code == 404


def test_plans_list_prices_included_quantities_and_quotas(cloud: LocalCloud) -> None:
    r = call(cloud, "GET", "/v1/plans", login(cloud, "grace"))
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["currency"] == "usd"
    assert [m["name"] for m in body["meters"]] == ["service_hours", "requests", "seats"]
    plans = {p["name"]: p for p in body["plans"]}
    assert set(plans) == {"starter", "team", "scale"}
    assert plans["starter"]["included"]["service_hours"] == "750"
    assert plans["team"]["base_price"] == 2000
    assert plans["team"]["prices"]["requests"][1] == {
        "up_to": "100000000",
        "unit_amount_decimal": "0.00004",
        "flat_amount": 0,
    }
    assert plans["scale"]["quota"]["memory_mib"] == 16384
