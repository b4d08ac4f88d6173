"""Accounts and teams through GitHub on the local cloud: login, onboarding a team end to end, roles,
tokens, membership webhooks, the audit log, a failed onboarding undone, offboarding."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

import pytest
import requests

from chalicelib.domain.clock import SystemClock
from localcloud.cloud import LocalCloud
from localcloud.standins.github import DEVICE_GRANT
from localcloud.standins.github_webhooks import deliver
from tests.fixtures import start_platform


@pytest.fixture(scope="module")
def cloud(tmp_path_factory: pytest.TempPathFactory, env_restored: None) -> Iterator[LocalCloud]:
    from chalicelib.composition import set_container

    c = start_platform(tmp_path_factory.mktemp("platform"), SystemClock())
    yield c
    c.stop()
    set_container(None)


class Api:
    def __init__(self, base: str, token: str | None = None) -> None:
        self.base = base
        self.token = token

    def __call__(
        self, method: str, path: str, body: Any = None, token: str | None = None, **kw: Any
    ) -> requests.Response:
        headers = dict(kw.pop("headers", {}))
        tok = token or self.token
        if tok:
            headers["Authorization"] = f"Bearer {tok}"
        return requests.request(method, f"{self.base}{path}", json=body, headers=headers, timeout=30, **kw)


def login(cloud: LocalCloud, who: str) -> str:
    r = requests.post(f"{cloud.api_url}/v1/auth/local-login", json={"login": who}, timeout=10)
    assert r.status_code == 200, r.text
    return str(r.json()["token"])


def wait_until(predicate: Any, timeout: float = 30, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def onboard(cloud: LocalCloud, token: str, team: str, region: str = "local") -> dict[str, Any]:
    api = Api(cloud.api_url, token)
    r = api("POST", "/v1/namespaces", {"github_org": "acme", "github_team": team, "region": region, "plan": "starter"})
    assert r.status_code == 202, r.text
    ns = r.json()
    assert ns["status"] == "provisioning"
    return dict(
        wait_until(
            lambda: (
                (lambda n: n if n["status"] != "provisioning" else None)(
                    api("GET", f"/v1/namespaces/{ns['id']}").json()
                )
                if api("GET", f"/v1/namespaces/{ns['id']}").status_code == 200
                else None
            ),
            what=f"onboarding of {team}",
        )
        or {}
    )


@pytest.fixture(scope="module")
def backend(cloud: LocalCloud) -> dict[str, Any]:
    ada = login(cloud, "ada")
    api = Api(cloud.api_url, ada)
    r = api(
        "POST", "/v1/namespaces", {"github_org": "acme", "github_team": "backend", "region": "local", "plan": "starter"}
    )
    assert r.status_code == 202, r.text
    assert r.json()["id"] == "acme-backend" and r.json()["status"] == "provisioning"
    arn = cloud.resources["state_machines"]["onboarding"].replace(":stateMachine:", ":execution:") + ":acme-backend"
    result = cloud.wait_execution(arn, timeout=60)
    assert result["status"] == "SUCCEEDED", result
    return {"ada": ada, "id": "acme-backend"}


def test_onboarding_a_team_end_to_end(cloud: LocalCloud, backend: dict[str, Any]) -> None:
    api = Api(cloud.api_url, backend["ada"])
    ns = api("GET", "/v1/namespaces/acme-backend").json()
    assert ns["status"] == "active" and ns["cluster_id"] == "local-1" and ns["failure_reason"] is None
    # the runtime namespace, its quota and its network policy are in the local runtime
    runtime = json.loads((cloud.data_dir / "runtime" / "namespaces.json").read_text())
    assert runtime["acme-backend"]["quotas"]["platform-quota"][1]["memory_mib"] == 1024
    assert runtime["acme-backend"]["policies"]["platform-isolation"] == {"owner": "acme-backend"}
    members = {m["login"]: m["role"] for m in api("GET", "/v1/namespaces/acme-backend/members").json()["members"]}
    assert members == {"ada": "owner", "linus": "admin", "grace": "member"}
    me = api("GET", "/v1/me").json()
    assert me["login"] == "ada" and [n["id"] for n in me["namespaces"]] == ["acme-backend"]
    assert me["namespaces"][0]["role"] == "owner"
    # every member has an account of their own on the runtime (the local runtime's registry here)
    accounts = json.loads((cloud.data_dir / "runtime" / "accounts.json").read_text())["accounts"]["acme-backend"]
    assert sorted(a["metadata"]["login"] for a in accounts.values()) == ["ada", "grace", "linus"]
    access = api("GET", "/v1/namespaces/acme-backend/runtime").json()
    assert access["proxy_address"] == cloud.api_url and access["api_address"] == cloud.api_url
    assert access["auth_token"].startswith("mp_lrt_") and access["scopes"] == ["admin"]
    assert accounts[access["account"]]["metadata"]["login"] == "ada"


def test_the_same_team_cannot_be_onboarded_twice(cloud: LocalCloud, backend: dict[str, Any]) -> None:
    r = Api(cloud.api_url, backend["ada"])(
        "POST", "/v1/namespaces", {"github_org": "acme", "github_team": "backend", "region": "local"}
    )
    assert r.status_code == 409 and r.json()["error"]["code"] == "conflict"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"github_org": "acme", "github_team": "nosuchteam", "region": "local"}, "github_team"),
        ({"github_org": "acme", "github_team": "frontend", "region": "mars-1"}, "region"),
        ({"github_org": "acme", "github_team": "frontend", "region": "local", "plan": "gold"}, "plan"),
    ],
)
def test_onboarding_validates_synchronously(
    cloud: LocalCloud, backend: dict[str, Any], body: dict[str, str], field: str
) -> None:
    r = Api(cloud.api_url, backend["ada"])("POST", "/v1/namespaces", body)
    assert r.status_code == 422, r.text
    assert [f["field"] for f in r.json()["error"]["details"]["fields"]] == [field]


def test_only_an_organization_owner_can_onboard(cloud: LocalCloud, backend: dict[str, Any]) -> None:
    r = Api(cloud.api_url, login(cloud, "linus"))(
        "POST", "/v1/namespaces", {"github_org": "acme", "github_team": "frontend", "region": "local"}
    )
    assert r.status_code == 403


def test_someone_outside_the_team_cannot_see_it(cloud: LocalCloud, backend: dict[str, Any]) -> None:
    api = Api(cloud.api_url, login(cloud, "ken"))
    r = api("GET", "/v1/namespaces/acme-backend")
    assert r.status_code == 404 and r.json()["error"]["code"] == "not_found"
    assert api("GET", "/v1/namespaces").json()["namespaces"] == []


def test_removing_someone_from_the_team_on_github_ends_their_access_at_once(
    cloud: LocalCloud, backend: dict[str, Any]
) -> None:
    grace = Api(cloud.api_url, login(cloud, "grace"))
    r = grace("POST", "/v1/tokens", {"name": "ci", "namespace": "acme-backend", "scopes": ["read", "deploy"]})
    assert r.status_code == 201, r.text
    ci_token = r.json()["token"]
    assert grace("GET", "/v1/namespaces/acme-backend", token=ci_token).status_code == 200
    cloud.github.remove_team_member("acme", "backend", "grace")  # GitHub sends the membership webhook

    def gone() -> bool:
        return grace("GET", "/v1/namespaces/acme-backend", token=ci_token).status_code == 401

    wait_until(gone, what="grace's token to stop working")
    r = grace("GET", "/v1/namespaces/acme-backend", token=ci_token)
    assert r.json()["error"]["details"]["reason"] == "revoked" and r.headers["WWW-Authenticate"].startswith("Bearer")
    assert grace("GET", "/v1/namespaces/acme-backend").status_code == 404  # her login token no longer sees it
    audit = Api(cloud.api_url, backend["ada"])("GET", "/v1/namespaces/acme-backend/audit?actor=github").json()
    assert any(e["action"] == "member.removed" and e["target"] == "member:grace" for e in audit["entries"])
    cloud.github.add_team_member("acme", "backend", "grace")
    wait_until(lambda: grace("GET", "/v1/namespaces/acme-backend").status_code == 200, what="grace back")


def test_after_the_organization_is_renamed_on_github_membership_still_follows_it(
    cloud: LocalCloud, backend: dict[str, Any]
) -> None:
    ada, grace = Api(cloud.api_url, backend["ada"]), Api(cloud.api_url, login(cloud, "grace"))

    def org_login_is(login: str) -> bool:
        return bool(ada("GET", "/v1/namespaces/acme-backend").json()["github_org"] == login)

    cloud.github.rename_org("acme", "acme-corp")  # GitHub sends organization renamed
    wait_until(lambda: org_login_is("acme-corp"), what="the namespace's organization login refreshed")
    audit = ada("GET", "/v1/namespaces/acme-backend/audit?action=organization.renamed").json()["entries"]
    assert [(e["actor"], e["target"]) for e in audit] == [("github", "organization:1000")]
    try:
        cloud.github.remove_team_member("acme-corp", "backend", "grace")
        wait_until(lambda: grace("GET", "/v1/namespaces/acme-backend").status_code == 404, what="grace removed")
        assert ada("GET", "/v1/namespaces/acme-backend").status_code == 200  # the owner keeps access
        cloud.github.add_team_member("acme-corp", "backend", "grace")
        wait_until(lambda: grace("GET", "/v1/namespaces/acme-backend").status_code == 200, what="grace back")
    finally:
        cloud.github.rename_org("acme-corp", "acme")
    wait_until(lambda: org_login_is("acme"), what="the organization's login back")


def test_the_daily_reconcile_catches_a_change_whose_webhook_never_came(
    cloud: LocalCloud, backend: dict[str, Any]
) -> None:
    from datetime import UTC, datetime

    grace = Api(cloud.api_url, login(cloud, "grace"))
    assert grace("GET", "/v1/namespaces/acme-backend").status_code == 200
    hook, cloud.github.webhook_url = cloud.github.webhook_url, None  # GitHub's webhook is lost
    try:
        cloud.github.remove_team_member("acme", "backend", "grace")
        time.sleep(0.5)
        assert grace("GET", "/v1/namespaces/acme-backend").status_code == 200  # nobody told the platform yet
        schedule = next(s for s in cloud.decl.list("schedules") if s["name"] == "membership-reconcile")
        cloud.fire_schedule(schedule, datetime.now(UTC))
        wait_until(lambda: grace("GET", "/v1/namespaces/acme-backend").status_code == 404, what="the reconcile")
        cloud.github.add_team_member("acme", "backend", "grace")
        cloud.fire_schedule(schedule, datetime.now(UTC))
        wait_until(lambda: grace("GET", "/v1/namespaces/acme-backend").status_code == 200, what="grace back")
    finally:
        cloud.github.webhook_url = hook


def test_webhooks_need_a_valid_signature_and_a_redelivery_starts_nothing(
    cloud: LocalCloud, backend: dict[str, Any]
) -> None:
    url = f"{cloud.api_url}/v1/webhooks/github"
    body = {
        "action": "added",
        "organization": {"id": 1000, "login": "acme"},
        "team": {"id": 2001, "slug": "backend"},
        "member": {"id": 3, "login": "grace"},
        "scope": "team",
    }
    r = deliver(url, "membership", body, "not-the-secret", delivery_id="d-bad-1")
    assert r.status_code == 401 and r.json()["error"]["code"] == "unauthenticated"
    r = requests.post(
        url, data=b"{}", headers={"X-GitHub-Event": "membership", "X-GitHub-Delivery": "d-unsigned"}, timeout=10
    )
    assert r.status_code == 401
    secret = cloud.github.app.webhook_secret
    first = deliver(url, "membership", body, secret, delivery_id="d-good-1")
    assert (first.status_code, first.json()["status"]) == (202, "enqueued")
    again = deliver(url, "membership", body, secret, delivery_id="d-good-1")
    assert (again.status_code, again.json()["status"]) == (200, "duplicate")
    assert deliver(url, "ping", {"zen": "Keep it logically awesome."}, secret).status_code == 200
    assert deliver(url, "star", {"action": "created"}, secret).json()["status"] == "ignored"
    # the bad deliveries recorded nothing: the same ids are still claimable as new
    assert deliver(url, "membership", body, secret, delivery_id="d-bad-1").json()["status"] == "enqueued"


def test_tokens_are_scoped_listed_without_secrets_and_revocable(cloud: LocalCloud, backend: dict[str, Any]) -> None:
    linus = Api(cloud.api_url, login(cloud, "linus"))
    r = linus(
        "POST", "/v1/tokens", {"name": "reader", "namespace": "acme-backend", "scopes": ["read"], "expires_in": 3600}
    )
    assert r.status_code == 201
    created = r.json()
    reader = created["token"]
    listed = linus("GET", "/v1/tokens").json()["tokens"]
    assert created["id"] in [t["id"] for t in listed] and all("token" not in t for t in listed)
    assert linus("GET", "/v1/namespaces/acme-backend/runtime", token=reader).status_code == 403  # needs deploy
    assert linus("GET", "/v1/namespaces/acme-backend", token=reader).status_code == 200
    listed = {t["id"]: t for t in linus("GET", "/v1/tokens").json()["tokens"]}
    assert listed[created["id"]]["last_used_at"] is not None
    assert linus("DELETE", f"/v1/tokens/{created['id']}").status_code == 204
    r = linus("GET", "/v1/namespaces/acme-backend", token=reader)
    assert r.status_code == 401 and r.json()["error"]["details"]["reason"] == "revoked"
    # a member cannot grant more than the role allows
    grace = Api(cloud.api_url, login(cloud, "grace"))
    r = grace("POST", "/v1/tokens", {"name": "x", "namespace": "acme-backend", "scopes": ["billing"]})
    assert r.status_code == 403 and r.json()["error"]["details"]["not_allowed"] == ["billing"]
    r = grace(
        "POST",
        "/v1/tokens",
        {"name": "x", "namespace": "acme-backend", "scopes": ["read"], "expires_in": 366 * 24 * 3600},
    )
    assert r.status_code == 422


def test_the_audit_log_records_state_changing_requests(cloud: LocalCloud, backend: dict[str, Any]) -> None:
    api = Api(cloud.api_url, backend["ada"])
    entries = api("GET", "/v1/namespaces/acme-backend/audit").json()["entries"]
    actions = [e["action"] for e in entries]
    assert "create_namespace" in actions and "member.added" in actions
    mine = api("GET", "/v1/namespaces/acme-backend/audit?actor=user:ada&action=create_namespace").json()["entries"]
    assert len(mine) == 1 and mine[0]["outcome"] == "ok" and mine[0]["source_ip"] == "127.0.0.1"
    assert api("GET", "/v1/namespaces/acme-backend/audit?since=yesterday").status_code == 422
    grace = Api(cloud.api_url, login(cloud, "grace"))
    assert grace("GET", "/v1/namespaces/acme-backend/audit").status_code == 403


def test_a_failed_placement_undoes_everything_and_emits_onboarding_failed(
    cloud: LocalCloud, backend: dict[str, Any]
) -> None:
    from chalicelib.composition import get_container
    from chalicelib.domain.ports import Cluster, Region

    c = get_container()
    c.regions.put(Region("tiny-1", "local", "A full region", "active"))
    c.regions.add_cluster(Cluster("tiny-a", "tiny-1", "local", "http://127.0.0.1:1", "active", capacity=0))
    customers_before = {x["id"] for x in cloud.stripe.state.customers.values() if not x.get("deleted")}
    api = Api(cloud.api_url, backend["ada"])
    r = api("POST", "/v1/namespaces", {"github_org": "acme", "github_team": "frontend", "region": "tiny-1"})
    assert r.status_code == 202
    arn = cloud.resources["state_machines"]["onboarding"].replace(":stateMachine:", ":execution:") + ":acme-frontend"
    assert cloud.wait_execution(arn, timeout=60)["status"] == "FAILED"
    ns = api("GET", "/v1/namespaces/acme-frontend")
    assert ns.status_code == 200  # its creator can read why it failed
    assert ns.json()["status"] == "failed" and "NoCapacityError" in ns.json()["failure_reason"]
    assert [m["login"] for m in api("GET", "/v1/namespaces/acme-frontend/members").json()["members"]] == ["ada"]
    failed = c.stores.namespaces.get("acme-frontend")
    assert failed.status == "failed" and "NoCapacityError" in failed.failure_reason
    assert failed.customer_id is None and failed.cluster_id is None
    # the Stripe customer the billing step made is deleted again (its subscription with it)
    assert {x["id"] for x in cloud.stripe.state.customers.values() if not x.get("deleted")} == customers_before
    assert c.stores.namespaces.by_team(1000, 2002) is None  # the team claim is released
    runtime = json.loads((cloud.data_dir / "runtime" / "namespaces.json").read_text())
    assert "acme-frontend" not in runtime
    events = [e.type for e in c.outbox.pending(100)] + _relayed_types(cloud)
    assert "onboarding.failed" in events
    # the team can be onboarded again, in a region with room
    again = onboard(cloud, backend["ada"], "frontend")
    assert again["status"] == "active"


def _relayed_types(cloud: LocalCloud) -> list[str]:
    from chalicelib.adapters.dynamodb.outbox import OutboxItem

    return [i.event().type for i in OutboxItem.query("OUTBOX#x") if False] or [
        json.loads(item["payload"]["S"])["type"]
        for item in cloud.client("dynamodb").query(
            TableName=cloud.decl.table_name,
            IndexName="GSI1",
            KeyConditionExpression="GSI1PK = :p",
            ExpressionAttributeValues={":p": {"S": "OUTBOX#PENDING"}},
        )["Items"]
    ]


def test_device_flow_login(cloud: LocalCloud) -> None:
    base = cloud.api_url
    start = requests.post(f"{base}/v1/auth/device", timeout=10).json()
    poll = requests.post(f"{base}/v1/auth/device/token", json={"device_code": start["device_code"]}, timeout=10)
    assert poll.status_code == 400 and poll.json()["error"]["code"] == "authorization_pending"
    again = requests.post(f"{base}/v1/auth/device/token", json={"device_code": start["device_code"]}, timeout=10)
    assert again.json()["error"]["code"] == "slow_down"
    cloud.github.approve_device(start["user_code"], "linus")
    time.sleep(start["interval"] + 5 + 0.2)  # the interval grew by 5 s after slow_down
    done = requests.post(f"{base}/v1/auth/device/token", json={"device_code": start["device_code"]}, timeout=10)
    assert done.status_code == 200, done.text
    assert done.json()["login"] == "linus"
    me = Api(base, done.json()["token"])("GET", "/v1/me").json()
    assert me["login"] == "linus"
    gone = requests.post(f"{base}/v1/auth/device/token", json={"device_code": start["device_code"]}, timeout=10)
    assert gone.json()["error"]["code"] == "expired_token"


def test_github_s_slow_down_reaches_the_cli_with_its_new_interval(cloud: LocalCloud) -> None:
    """One poll that reached GitHub too soon (a slow network, a retry): GitHub adds 5 s to the interval
    and says which; the API passes it on and holds later polls to it, so the login can still finish."""
    base, gh = cloud.api_url, cloud.github
    start = requests.post(f"{base}/v1/auth/device", timeout=10).json()
    github_poll = {"client_id": gh.app.client_id, "device_code": start["device_code"], "grant_type": DEVICE_GRANT}
    for _ in range(2):  # GitHub sees two polls at once: slow_down, its interval is now 10 s
        requests.post(f"{gh.url}/login/oauth/access_token", data=github_poll, timeout=10)
    poll = requests.post(f"{base}/v1/auth/device/token", json={"device_code": start["device_code"]}, timeout=10)
    assert poll.status_code == 400
    assert poll.json()["error"]["code"] == "slow_down", poll.text
    assert poll.json()["error"]["details"]["interval"] == start["interval"] + 10  # GitHub's new interval: 15 s
    again = requests.post(f"{base}/v1/auth/device/token", json={"device_code": start["device_code"]}, timeout=10)
    assert again.json()["error"] == {  # too soon for the API: its own slow_down (+5 s, as GitHub's rule)
        "code": "slow_down",
        "message": "polling too fast; wait longer between polls",
        "details": {"interval": start["interval"] + 15},
    }
    # ... and GitHub was not asked: one more poll straight to it makes its interval 20 s, not 25 s
    github_said = requests.post(f"{gh.url}/login/oauth/access_token", data=github_poll, timeout=10)
    assert dict(parse_qsl(github_said.text))["interval"] == str(start["interval"] + 15)


def test_browser_login_sets_a_session_cookie(cloud: LocalCloud) -> None:
    s = requests.Session()
    r = s.get(f"{cloud.api_url}/v1/auth/github/login", allow_redirects=False, timeout=10)
    assert r.status_code == 302 and r.headers["Location"].startswith(cloud.github.url)
    to_github = s.get(r.headers["Location"] + "&login=ken", allow_redirects=False, timeout=10)
    assert to_github.status_code == 302
    back = s.get(to_github.headers["Location"], allow_redirects=False, timeout=10)
    assert back.status_code == 302, back.text
    assert "platform_session" in s.cookies
    me = s.get(f"{cloud.api_url}/v1/me", timeout=10)
    assert me.status_code == 200 and me.json()["login"] == "ken"
    # a state used once, or from another browser, is refused
    replay = requests.get(to_github.headers["Location"], allow_redirects=False, timeout=10)
    assert replay.status_code == 401
    # changes from a browser session need X-Requested-With
    r = s.post(
        f"{cloud.api_url}/v1/tokens", json={"name": "x", "namespace": "acme-frontend", "scopes": ["read"]}, timeout=10
    )
    assert r.status_code == 403


def test_local_login_refuses_unknown_users(cloud: LocalCloud) -> None:
    r = requests.post(f"{cloud.api_url}/v1/auth/local-login", json={"login": "mallory"}, timeout=10)
    assert r.status_code == 404


def test_offboarding_removes_the_runtime_namespace_and_keeps_the_audit_log(
    cloud: LocalCloud, backend: dict[str, Any]
) -> None:
    from chalicelib.composition import get_container

    api = Api(cloud.api_url, backend["ada"])
    assert Api(cloud.api_url, login(cloud, "ken"))("DELETE", "/v1/namespaces/acme-frontend").status_code == 403
    assert Api(cloud.api_url, login(cloud, "linus"))("DELETE", "/v1/namespaces/acme-frontend").status_code == 404
    r = api("DELETE", "/v1/namespaces/acme-frontend")
    assert r.status_code == 202 and r.json()["status"] == "deleting"
    c = get_container()
    wait_until(lambda: c.stores.namespaces.get("acme-frontend").status == "deleted", what="offboarding")
    runtime = json.loads((cloud.data_dir / "runtime" / "namespaces.json").read_text())
    assert "acme-frontend" not in runtime
    subscription = c.stores.namespaces.get("acme-frontend").subscription_id
    sub = cloud.stripe.state.subscriptions[subscription]
    assert sub["cancel_at_period_end"] and sub["status"] == "active", "the subscription is cancelled at period end"
    assert c.audit.query("acme-frontend", limit=10), "the audit log is kept"
    assert c.stores.namespaces.by_team(1000, 2002) is None


def test_the_prod_app_has_no_local_login(tmp_path: Path) -> None:
    import subprocess
    import sys

    code = (
        "import json; from app import app; from chalicelib.api.registry import registry; "
        "from chalicelib.api.openapi import build_document; "
        "print(json.dumps([sorted(app.routes), sorted(build_document(registry.specs, version='x')['paths'])]))"
    )
    import os

    env = {**os.environ, "PLATFORM_STAGE": "prod"}
    out = subprocess.run(
        [sys.executable, "-c", code],
        env=env,
        capture_output=True,
        text=True,
        check=True,
        cwd=Path(__file__).resolve().parents[2],
    )
    routes, documented = json.loads(out.stdout)
    assert "/v1/auth/local-login" not in routes and "/v1/auth/local-login" not in documented
    assert "/v1/auth/local-session" not in routes and "/v1/auth/local-session" not in documented
    assert "/v1/auth/device" in routes


# ---------------------------------------------------------------- onboardings and offboardings cut short


def add_team(cloud: LocalCloud, slug: str, team_id: int) -> None:
    from localcloud.standins.github import Team

    with cloud.github.lock:
        cloud.github.state.org("acme").teams[slug] = Team(id=team_id, org="acme", slug=slug, name=slug)


def cut_short(cloud: LocalCloud, slug: str, team_id: int, *, minutes_ago: float) -> str:
    """A namespace provisioning since ``minutes_ago`` whose onboarding execution never ran, as a crash
    between the claim and the execution's start, or a restart of the local cloud, leaves it."""
    from datetime import UTC, datetime, timedelta

    from chalicelib.composition import get_container
    from chalicelib.domain.model import Member, Namespace

    add_team(cloud, slug, team_id)
    since = datetime.now(UTC) - timedelta(minutes=minutes_ago)
    ns_id = f"acme-{slug}"
    ada = cloud.github.state.user("ada").id
    get_container().stores.namespaces.create(
        Namespace(ns_id, "acme", 1000, slug, team_id, "local", "starter", "provisioning", since, "ada"),
        [],
        Member(ns_id, ada, "ada", "owner", "org_owner"),
    )
    return ns_id


def status_of(api: Api, ns_id: str) -> str:
    """Its status as its owner sees it; a deleted namespace is no longer theirs to see: the table's."""
    from chalicelib.composition import get_container

    r = api("GET", f"/v1/namespaces/{ns_id}")
    return str(r.json()["status"]) if r.status_code == 200 else get_container().stores.namespaces.get(ns_id).status


def test_an_owner_can_delete_a_namespace_whose_onboarding_stopped_short(
    cloud: LocalCloud, backend: dict[str, Any]
) -> None:
    api = Api(cloud.api_url, backend["ada"])
    ns_id = cut_short(cloud, "stuck-delete", 2101, minutes_ago=3)
    onboard_again = {"github_org": "acme", "github_team": "stuck-delete", "region": "local"}
    assert api("POST", "/v1/namespaces", onboard_again).status_code == 409  # the team is claimed
    r = api("DELETE", f"/v1/namespaces/{ns_id}")
    assert r.status_code == 202, r.text
    assert r.json()["status"] == "deleting"
    wait_until(lambda: status_of(api, ns_id) == "deleted", what="the offboarding")
    assert api("POST", "/v1/namespaces", onboard_again).status_code == 202  # the team is free again
    wait_until(lambda: status_of(api, ns_id) == "active", what="the onboarding")

    young = cut_short(cloud, "stuck-young-delete", 2105, minutes_ago=0)  # it may still be starting: not yet
    r = api("DELETE", f"/v1/namespaces/{young}")
    assert r.status_code == 409 and "try again" in r.json()["error"]["message"]


def test_the_sweeper_resumes_onboardings_and_offboardings_that_stopped_short_and_leaves_running_ones_alone(
    cloud: LocalCloud, backend: dict[str, Any]
) -> None:
    from datetime import UTC, datetime, timedelta

    from chalicelib.composition import get_container

    api = Api(cloud.api_url, backend["ada"])
    stuck = cut_short(cloud, "stuck-sweep", 2102, minutes_ago=3)
    young = cut_short(cloud, "stuck-young", 2103, minutes_ago=0)  # might still be starting: left alone
    assert cloud.router.invoke("namespace-sweep", {}) == ({"resumed": [stuck]}, None)
    wait_until(lambda: status_of(api, stuck) == "active", what="the resumed onboarding")
    assert status_of(api, young) == "provisioning"

    # An offboarding whose execution no longer runs is resumed too.
    get_container().stores.namespaces.update(
        stuck, {"status": "deleting", "status_at": datetime.now(UTC) - timedelta(minutes=3)}
    )
    assert cloud.router.invoke("namespace-sweep", {}) == ({"resumed": [stuck]}, None)
    wait_until(lambda: status_of(api, stuck) == "deleted", what="the resumed offboarding")

    # An onboarding whose execution runs is left alone, however the sweeper is asked.
    add_team(cloud, "running", 2104)
    r = api("POST", "/v1/namespaces", {"github_org": "acme", "github_team": "running", "region": "local"})
    assert r.status_code == 202
    result, _ = cloud.router.invoke("namespace-sweep", {"grace_seconds": 0})
    assert "acme-running" not in json.dumps(result)
    wait_until(lambda: status_of(api, "acme-running") == "active", what="the onboarding")
