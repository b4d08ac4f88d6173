"""The GitHub stand-in as GitHub's side of a GitHub App, over real HTTP on loopback: OAuth device and web
flows, app JWT and installation tokens through PyGithub, signed webhooks and the deliveries API."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import jwt
import pytest
import requests
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from github import Auth, Github, GithubException, GithubIntegration

from chalicelib.domain.clock import ManualClock
from localcloud.standins.github import GitHubStandIn
from localcloud.standins.github_webhooks import deliver, sign, verify

APP_ID = 4242
CLIENT_ID = "Iv1.localplatform"
CLIENT_SECRET = "0c1a1d5ec2e7f4b6a9d8c3b2a1f0e9d8c7b6a5f4"
WEBHOOK_SECRET = "local-webhook-secret"
INSTALLATION = 7001
JSON = {"Accept": "application/json"}


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(datetime.now(UTC).replace(microsecond=0))


@pytest.fixture
def gh(clock: ManualClock) -> Iterator[GitHubStandIn]:
    stand_in = GitHubStandIn(clock=clock).start()
    yield stand_in
    stand_in.stop()


class Receiver:
    """A tiny webhook receiver: records every POST, answers ``status`` after ``delay`` seconds."""

    def __init__(self) -> None:
        self.received: list[tuple[dict[str, str], bytes]] = []
        self.status = 202
        self.delay = 0.0
        self.arrived = threading.Condition()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                time.sleep(receiver.delay)
                with receiver.arrived:
                    receiver.received.append(({k.lower(): v for k, v in self.headers.items()}, body))
                    receiver.arrived.notify_all()
                self.send_response(receiver.status)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/webhooks/github"
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.close()


def poll(gh: GitHubStandIn, device_code: str, client_id: str = CLIENT_ID) -> dict[str, Any]:
    data = {
        "client_id": client_id,
        "device_code": device_code,
        "grant_type": "urn:ietf:params:oauth:grant-type:device_code",
    }
    r = requests.post(f"{gh.url}/login/oauth/access_token", data=data, headers=JSON, timeout=5)
    assert r.status_code == 200  # GitHub answers errors of the token endpoint with 200 too
    body: dict[str, Any] = r.json()
    return body


def device_code(gh: GitHubStandIn) -> dict[str, Any]:
    r = requests.post(f"{gh.url}/login/device/code", data={"client_id": CLIENT_ID}, headers=JSON, timeout=5)
    assert r.status_code == 200 and r.headers["Content-Type"].startswith("application/json")
    body: dict[str, Any] = r.json()
    return body


def integration(gh: GitHubStandIn) -> GithubIntegration:
    auth = Auth.AppAuth(APP_ID, gh.app_private_key_pem.decode())
    return GithubIntegration(
        auth=auth, base_url=gh.api_url, retry=None, seconds_between_requests=None, seconds_between_writes=None
    )


def app_jwt(gh: GitHubStandIn, **claims: Any) -> str:
    now = int(gh.clock.now().timestamp())
    payload = {"iat": now - 60, "exp": now + 300, "iss": str(APP_ID), **claims}
    return jwt.encode(payload, gh.app_private_key_pem, algorithm="RS256")


# ---------------------------------------------------------------- device flow


def test_the_device_flow_pending_slow_down_approved(gh: GitHubStandIn, clock: ManualClock) -> None:
    code = device_code(gh)
    assert set(code) == {"device_code", "user_code", "verification_uri", "expires_in", "interval"}
    assert code["verification_uri"] == f"{gh.url}/login/device"
    assert (code["expires_in"], code["interval"]) == (900, 5)
    user_code = code["user_code"]
    assert len(user_code) == 9 and user_code[4] == "-" and user_code.replace("-", "").isalnum()

    assert poll(gh, code["device_code"])["error"] == "authorization_pending"
    clock.advance(1)
    slow = poll(gh, code["device_code"])
    assert slow["error"] == "slow_down" and slow["interval"] == 10
    assert slow["error_description"] and slow["error_uri"].startswith("https://docs.github.com/")

    r = requests.post(f"{gh.url}/_stand-in/device/approve", json={"user_code": user_code, "login": "grace"}, timeout=5)
    assert r.status_code == 200 and r.json()["status"] == "approved"
    clock.advance(10)
    assert poll(gh, code["device_code"]) == {"access_token": gh.token_for("grace"), "token_type": "bearer", "scope": ""}
    # the token is the user's: the API knows who it is
    me = requests.get(f"{gh.api_url}/user", headers={"Authorization": f"Bearer {gh.token_for('grace')}"}, timeout=5)
    assert me.json()["login"] == "grace"
    clock.advance(10)
    assert poll(gh, code["device_code"])["error"] == "incorrect_device_code"  # used up


def test_the_device_flow_answers_form_encoded_by_default(gh: GitHubStandIn) -> None:
    r = requests.post(f"{gh.url}/login/device/code", data={"client_id": CLIENT_ID, "scope": ""}, timeout=5)
    assert r.headers["Content-Type"].startswith("application/x-www-form-urlencoded")
    form = parse_qs(r.text)
    assert form["expires_in"] == ["900"] and form["interval"] == ["5"]
    data = {
        "client_id": CLIENT_ID,
        "device_code": form["device_code"][0],
        "grant_type": "urn:ietf:params:oauth:grant-type:device_code",
    }
    answer = requests.post(f"{gh.url}/login/oauth/access_token", data=data, timeout=5)
    assert parse_qs(answer.text)["error"] == ["authorization_pending"]


def test_the_device_flow_accepts_json_requests_and_the_python_approval(gh: GitHubStandIn) -> None:
    r = requests.post(f"{gh.url}/login/device/code", json={"client_id": CLIENT_ID}, headers=JSON, timeout=5)
    code = r.json()
    gh.approve_device(code["user_code"].lower().replace("-", ""), "ken")  # typed loosely, as people do
    assert poll(gh, code["device_code"])["access_token"] == gh.token_for("ken")


def test_a_denied_device_code(gh: GitHubStandIn, clock: ManualClock) -> None:
    code = device_code(gh)
    r = requests.post(f"{gh.url}/_stand-in/device/deny", json={"user_code": code["user_code"]}, timeout=5)
    assert r.status_code == 200 and r.json()["status"] == "denied"
    assert poll(gh, code["device_code"])["error"] == "access_denied"
    unknown = requests.post(f"{gh.url}/_stand-in/device/deny", json={"user_code": "ZZZZ-9999"}, timeout=5)
    assert unknown.status_code == 404
    unknown = requests.post(
        f"{gh.url}/_stand-in/device/approve", json={"user_code": "ZZZZ-9999", "login": "ada"}, timeout=5
    )
    assert unknown.status_code == 404


def test_a_device_code_expires_after_900_seconds(gh: GitHubStandIn, clock: ManualClock) -> None:
    code = device_code(gh)
    clock.advance(899)
    assert poll(gh, code["device_code"])["error"] == "authorization_pending"
    clock.advance(1)
    gh.approve_device(code["user_code"], "ada")  # too late
    assert poll(gh, code["device_code"])["error"] == "expired_token"


def test_device_flow_wrong_client_and_wrong_code(gh: GitHubStandIn) -> None:
    code = device_code(gh)
    assert poll(gh, code["device_code"], client_id="Iv1.other")["error"] == "incorrect_client_credentials"
    assert poll(gh, "0" * 40)["error"] == "incorrect_device_code"
    r = requests.post(f"{gh.url}/login/device/code", data={"client_id": "Iv1.other"}, headers=JSON, timeout=5)
    assert r.status_code == 404


def test_the_device_page_lets_a_person_approve(gh: GitHubStandIn) -> None:
    code = device_code(gh)
    page = requests.get(f"{gh.url}/login/device", timeout=5)
    assert page.status_code == 200 and "user_code" in page.text
    r = requests.post(
        f"{gh.url}/login/device",
        data={"user_code": code["user_code"], "login": "linus", "action": "approve"},
        timeout=5,
    )
    assert r.status_code == 200 and "all set" in r.text
    assert poll(gh, code["device_code"])["access_token"] == gh.token_for("linus")


# ---------------------------------------------------------------- web flow


def authorize(gh: GitHubStandIn, **params: str) -> requests.Response:
    query = {"client_id": CLIENT_ID, "redirect_uri": "http://127.0.0.1:8000/auth/callback", "state": "xyz", **params}
    return requests.get(f"{gh.url}/login/oauth/authorize", params=query, allow_redirects=False, timeout=5)


def exchange(gh: GitHubStandIn, code: str, secret: str = CLIENT_SECRET) -> dict[str, Any]:
    data = {
        "client_id": CLIENT_ID,
        "client_secret": secret,
        "code": code,
        "redirect_uri": "http://127.0.0.1:8000/auth/callback",
    }
    r = requests.post(f"{gh.url}/login/oauth/access_token", data=data, headers=JSON, timeout=5)
    assert r.status_code == 200
    body: dict[str, Any] = r.json()
    return body


def test_the_web_flow_redirects_with_code_and_state_and_the_code_is_single_use(gh: GitHubStandIn) -> None:
    r = authorize(gh, login="linus")
    assert r.status_code == 302
    location = urlsplit(r.headers["Location"])
    assert f"{location.scheme}://{location.netloc}{location.path}" == "http://127.0.0.1:8000/auth/callback"
    query = parse_qs(location.query)
    assert query["state"] == ["xyz"]
    code = query["code"][0]
    assert exchange(gh, code) == {"access_token": gh.token_for("linus"), "token_type": "bearer", "scope": ""}
    again = exchange(gh, code)
    assert again["error"] == "bad_verification_code" and "access_token" not in again
    assert exchange(gh, "nonsense")["error"] == "bad_verification_code"


def test_the_web_flow_signs_in_with_the_cookie(gh: GitHubStandIn) -> None:
    r = authorize(gh, login="ken")
    assert "standin_login=ken" in r.headers["Set-Cookie"]
    session = requests.Session()
    session.cookies.set("standin_login", "grace")
    query = {"client_id": CLIENT_ID, "redirect_uri": "http://127.0.0.1:8000/cb?next=%2F", "state": "s"}
    again = session.get(f"{gh.url}/login/oauth/authorize", params=query, allow_redirects=False, timeout=5)
    assert again.status_code == 302 and again.headers["Location"].startswith("http://127.0.0.1:8000/cb?next=%2F&code=")
    code = parse_qs(urlsplit(again.headers["Location"]).query)["code"][0]
    data = {"client_id": CLIENT_ID, "client_secret": CLIENT_SECRET, "code": code}
    token = requests.post(f"{gh.url}/login/oauth/access_token", data=data, timeout=5)
    assert parse_qs(token.text)["access_token"] == [gh.token_for("grace")]  # form-encoded without Accept


def test_the_web_flow_without_a_user_offers_the_seeded_ones(gh: GitHubStandIn) -> None:
    r = authorize(gh)
    assert r.status_code == 200 and r.headers["Content-Type"].startswith("text/html")
    for login in ("ada", "linus", "grace", "ken", "ops"):
        assert f"login={login}" in r.text
    assert authorize(gh, client_id="Iv1.other").status_code == 404


def test_the_web_flow_refuses_wrong_client_credentials(gh: GitHubStandIn) -> None:
    code = parse_qs(urlsplit(authorize(gh, login="ada").headers["Location"]).query)["code"][0]
    assert exchange(gh, code, secret="wrong")["error"] == "incorrect_client_credentials"


# ---------------------------------------------------------------- app JWT and installations


def test_the_app_and_its_installation_through_pygithub(gh: GitHubStandIn) -> None:
    gi = integration(gh)
    app = gi.get_app()
    assert (app.id, app.slug, app.client_id) == (APP_ID, "micro-platform", CLIENT_ID)
    assert app.raw_data["owner"]["login"] == "acme"
    installation = gi.get_org_installation("acme")
    assert installation.id == INSTALLATION and installation.app_id == APP_ID
    assert installation.permissions["members"] == "read" and "membership" in installation.events
    assert [i.id for i in gi.get_installations()] == [INSTALLATION]
    assert gi.get_app_installation(INSTALLATION).target_type == "Organization"
    token = gi.get_access_token(INSTALLATION)
    assert token.token.startswith("ghs_") and len(token.token) == 40
    assert timedelta(minutes=59) < token.expires_at - datetime.now(UTC) <= timedelta(hours=1, seconds=5)
    with pytest.raises(GithubException) as raised:
        gi.get_org_installation("nowhere")
    assert raised.value.status == 404


def test_an_installation_token_reads_the_organizations_teams(gh: GitHubStandIn) -> None:
    auth = Auth.AppAuth(APP_ID, gh.app_private_key_pem.decode()).get_installation_auth(INSTALLATION)
    g = Github(base_url=gh.api_url, auth=auth, retry=None, seconds_between_requests=None, seconds_between_writes=None)
    org = g.get_organization("acme")
    assert [u.login for u in org.get_team_by_slug("backend").get_members()] == ["linus", "grace"]
    assert [t.slug for t in org.get_teams()] == ["backend", "frontend"]
    assert [u.login for u in org.get_members(role="admin")] == ["ada"]
    assert g.get_user("grace").get_organization_membership("acme").role == "member"


def test_an_installation_token_is_not_a_user(gh: GitHubStandIn) -> None:
    token = integration(gh).get_access_token(INSTALLATION).token
    headers = {"Authorization": f"token {token}"}
    r = requests.get(f"{gh.api_url}/user", headers=headers, timeout=5)
    assert r.status_code == 403 and r.json()["message"] == "Resource not accessible by integration"
    # members: read cannot change a team
    put = requests.put(f"{gh.api_url}/orgs/acme/teams/backend/memberships/ken", headers=headers, timeout=5)
    assert put.status_code == 403 and put.json()["message"] == "Resource not accessible by integration"
    repos = requests.get(f"{gh.api_url}/installation/repositories", headers=headers, timeout=5)
    listed = repos.json()
    assert listed["total_count"] == 1 and listed["repository_selection"] == "all"
    assert [r["full_name"] for r in listed["repositories"]] == ["acme/hello"]
    assert requests.delete(f"{gh.api_url}/installation/token", headers=headers, timeout=5).status_code == 204
    assert requests.get(f"{gh.api_url}/orgs/acme/teams", headers=headers, timeout=5).status_code == 401


def test_an_installation_token_expires_after_an_hour(gh: GitHubStandIn, clock: ManualClock) -> None:
    token = integration(gh).get_access_token(INSTALLATION).token
    headers = {"Authorization": f"token {token}"}
    assert requests.get(f"{gh.api_url}/orgs/acme/teams", headers=headers, timeout=5).status_code == 200
    clock.advance(3600)
    r = requests.get(f"{gh.api_url}/orgs/acme/teams", headers=headers, timeout=5)
    assert r.status_code == 401 and r.json()["message"] == "Bad credentials"


def test_a_token_with_fewer_permissions(gh: GitHubStandIn) -> None:
    headers = {"Authorization": f"Bearer {app_jwt(gh)}"}
    url = f"{gh.api_url}/app/installations/{INSTALLATION}/access_tokens"
    r = requests.post(url, json={"permissions": {"metadata": "read"}}, headers=headers, timeout=5)
    assert r.status_code == 201 and r.json()["permissions"] == {"metadata": "read"}
    token = {"Authorization": f"token {r.json()['token']}"}
    assert requests.get(f"{gh.api_url}/orgs/acme/teams", headers=token, timeout=5).status_code == 404
    too_much = requests.post(url, json={"permissions": {"members": "write"}}, headers=headers, timeout=5)
    assert too_much.status_code == 422


def test_bad_app_jwts_are_401(gh: GitHubStandIn, clock: ManualClock) -> None:
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    other_pem = other.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    now = int(clock.now().timestamp())
    forged = jwt.encode({"iat": now - 60, "exp": now + 300, "iss": str(APP_ID)}, other_pem, algorithm="RS256")
    cases = {
        "forged": forged,
        "garbage": "eyJhbGciOiJSUzI1NiJ9.eyJpc3MiOjF9.bm9wZQ",
        "expired": app_jwt(gh, iat=now - 700, exp=now - 10),
        "too long": app_jwt(gh, exp=now + 3600),
        "other app": app_jwt(gh, iss="99"),
    }
    for name, token in cases.items():
        r = requests.get(f"{gh.api_url}/app", headers={"Authorization": f"Bearer {token}"}, timeout=5)
        assert r.status_code == 401, name
        assert r.json()["documentation_url"] and r.json()["status"] == "401", name
    r = requests.get(f"{gh.api_url}/app", headers={"Authorization": f"Bearer {forged}"}, timeout=5)
    assert r.json()["message"] == "A JSON web token could not be decoded"
    user_token = {"Authorization": f"token {gh.token_for('ada')}"}
    no_jwt = requests.get(f"{gh.api_url}/app/installations", headers=user_token, timeout=5)
    assert no_jwt.status_code == 401
    assert requests.get(f"{gh.api_url}/app", timeout=5).status_code == 401
    # iss as an integer too (PyJWT's encode insists on a string: sign the claims as they are)
    claims = json.dumps({"iat": now - 60, "exp": now + 300, "iss": APP_ID}).encode()
    int_iss = jwt.api_jws.encode(claims, gh.app_private_key_pem, algorithm="RS256")
    ok = requests.get(f"{gh.api_url}/app", headers={"Authorization": f"Bearer {int_iss}"}, timeout=5)
    assert ok.status_code == 200
    clock.advance(301)
    stale = requests.get(f"{gh.api_url}/app", headers={"Authorization": f"Bearer {app_jwt(gh)}"}, timeout=5)
    assert stale.status_code == 200  # a JWT made now is fine; the one from before has expired:
    old = jwt.encode({"iat": now - 60, "exp": now + 300, "iss": str(APP_ID)}, gh.app_private_key_pem, "RS256")
    assert requests.get(f"{gh.api_url}/app", headers={"Authorization": f"Bearer {old}"}, timeout=5).status_code == 401


def test_a_given_private_key_is_used() -> None:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    with GitHubStandIn(app_private_key=pem) as gh:
        token = jwt.encode({"iat": int(time.time()) - 60, "exp": int(time.time()) + 300, "iss": "4242"}, pem, "RS256")
        r = requests.get(f"{gh.api_url}/app", headers={"Authorization": f"Bearer {token}"}, timeout=5)
        assert r.status_code == 200 and r.json()["id"] == APP_ID


def test_user_installations(gh: GitHubStandIn) -> None:
    url = f"{gh.api_url}/user/installations"
    r = requests.get(url, headers={"Authorization": f"token {gh.token_for('ken')}"}, timeout=5)
    assert r.json()["total_count"] == 1 and r.json()["installations"][0]["id"] == INSTALLATION
    r = requests.get(url, headers={"Authorization": f"token {gh.token_for('ops')}"}, timeout=5)
    assert r.json() == {"total_count": 0, "installations": []}


# ---------------------------------------------------------------- webhooks


def test_the_signature_matches_githubs_test_vector() -> None:
    expected = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"
    assert sign("It's a Secret to Everybody", b"Hello, World!") == expected
    assert verify("It's a Secret to Everybody", b"Hello, World!", expected)
    assert not verify("another secret", b"Hello, World!", expected)


def test_deliver_posts_like_github(receiver: Receiver) -> None:
    response = deliver(receiver.url, "ping", {"zen": "z"}, "s3cret", "d-1", hook_id=5, app_id=4242)
    assert response.status_code == 202
    [(headers, body)] = receiver.received
    assert body == b'{"zen":"z"}'
    assert headers["x-github-event"] == "ping" and headers["x-github-delivery"] == "d-1"
    assert headers["x-github-hook-id"] == "5"
    assert headers["x-github-hook-installation-target-type"] == "integration"
    assert headers["x-github-hook-installation-target-id"] == "4242"
    assert headers["x-hub-signature-256"] == sign("s3cret", body)
    assert headers["user-agent"].startswith("GitHub-Hookshot/")
    assert headers["content-type"] == "application/json"


def wait_for(receiver: Receiver, count: int) -> None:
    with receiver.arrived:
        assert receiver.arrived.wait_for(lambda: len(receiver.received) >= count, 5)


def test_a_team_membership_removal_sends_a_signed_membership_webhook(gh: GitHubStandIn, receiver: Receiver) -> None:
    gh.webhook_url = receiver.url
    gh.remove_team_member("acme", "backend", "grace")
    assert gh.wait_for_deliveries(5)
    [(headers, body)] = receiver.received
    assert verify(WEBHOOK_SECRET, body, headers["x-hub-signature-256"])
    assert headers["x-github-event"] == "membership"
    assert headers["x-github-hook-installation-target-id"] == str(APP_ID)
    payload = json.loads(body)
    assert payload["action"] == "removed" and payload["scope"] == "team"
    assert (payload["member"]["login"], payload["member"]["id"]) == ("grace", 3)
    assert (payload["team"]["slug"], payload["team"]["id"]) == ("backend", 2001)
    assert payload["team"]["url"] == f"{gh.api_url}/organizations/1000/team/2001"
    assert (payload["organization"]["login"], payload["organization"]["id"]) == ("acme", 1000)
    assert payload["sender"]["login"] == "ada"  # the owner, when the local cloud makes the change
    assert payload["installation"]["id"] == INSTALLATION and payload["installation"]["node_id"]
    [delivery] = gh.deliveries()
    assert delivery["guid"] == headers["x-github-delivery"]
    assert (delivery["event"], delivery["action"], delivery["status_code"], delivery["status"]) == (
        "membership",
        "removed",
        202,
        "OK",
    )
    assert delivery["installation_id"] == INSTALLATION and delivery["redelivery"] is False

    # the deliveries API (JWT) lists it, and a redelivery sends it again with the same GUID
    jwt_headers = {"Authorization": f"Bearer {app_jwt(gh)}"}
    listed = requests.get(f"{gh.api_url}/app/hook/deliveries", headers=jwt_headers, timeout=5).json()
    assert [d["guid"] for d in listed] == [delivery["guid"]]
    assert set(listed[0]) >= {
        "id",
        "guid",
        "delivered_at",
        "redelivery",
        "duration",
        "status",
        "status_code",
        "event",
        "action",
        "installation_id",
        "repository_id",
    }
    one = requests.get(f"{gh.api_url}/app/hook/deliveries/{delivery['id']}", headers=jwt_headers, timeout=5).json()
    assert one["request"]["payload"]["member"]["login"] == "grace"
    r = requests.post(f"{gh.api_url}/app/hook/deliveries/{delivery['id']}/attempts", headers=jwt_headers, timeout=5)
    assert r.status_code == 202
    assert gh.wait_for_deliveries(5)
    wait_for(receiver, 2)
    (h2, b2) = receiver.received[1]
    assert b2 == body and h2["x-github-delivery"] == headers["x-github-delivery"]
    newest = requests.get(f"{gh.api_url}/app/hook/deliveries", headers=jwt_headers, timeout=5).json()
    assert [d["redelivery"] for d in newest] == [True, False]
    missing = requests.post(f"{gh.api_url}/app/hook/deliveries/1/attempts", headers=jwt_headers, timeout=5)
    assert missing.status_code == 404


def test_changes_through_the_api_send_webhooks_with_the_caller_as_sender(gh: GitHubStandIn, receiver: Receiver) -> None:
    gh.webhook_url = receiver.url
    g = Github(base_url=gh.api_url, auth=Auth.Token(gh.token_for("linus")), retry=None, seconds_between_requests=None)
    team = g.get_organization("acme").get_team_by_slug("backend")
    team.add_membership(g.get_user("ken"))
    team.remove_membership(g.get_user("grace"))
    Github(
        base_url=gh.api_url, auth=Auth.Token(gh.token_for("ada")), retry=None, seconds_between_requests=None
    ).get_organization("acme").remove_from_membership(g.get_user("ken"))
    assert gh.wait_for_deliveries(5)
    events = [(h["x-github-event"], json.loads(b)) for h, b in receiver.received]
    assert [
        (e, p["action"], p.get("member", p.get("membership", {}).get("user", {})).get("login")) for e, p in events
    ] == [
        ("membership", "added", "ken"),
        ("membership", "removed", "grace"),
        ("organization", "member_removed", "ken"),
    ]
    assert [p["sender"]["login"] for _, p in events] == ["linus", "linus", "ada"]
    assert events[2][1]["membership"] | {"user": None} == {
        "url": f"{gh.api_url}/orgs/acme/memberships/ken",
        "state": "active",
        "role": "member",
        "organization_url": f"{gh.api_url}/orgs/acme",
        "user": None,
    }


def test_no_webhook_url_sends_nothing(gh: GitHubStandIn, receiver: Receiver) -> None:
    gh.remove_team_member("acme", "backend", "grace")
    assert gh.wait_for_deliveries(1)
    assert receiver.received == [] and gh.deliveries() == []


def test_a_failed_delivery_is_recorded_and_not_retried(gh: GitHubStandIn, receiver: Receiver) -> None:
    receiver.close()
    gh.webhook_url = receiver.url  # nobody listens any more
    gh.remove_team_member("acme", "backend", "grace")
    assert gh.wait_for_deliveries(5)
    time.sleep(0.2)
    [delivery] = gh.deliveries()
    assert delivery["status_code"] == 0 and "couldn't deliver" in delivery["status"]


def test_a_slow_receiver_times_out(gh: GitHubStandIn, receiver: Receiver) -> None:
    gh.webhook_url = receiver.url
    gh.webhook_timeout = 0.2  # GitHub's is 10 s
    receiver.delay = 1.0
    gh.remove_team_member("acme", "backend", "grace")
    assert gh.wait_for_deliveries(5)
    [delivery] = gh.deliveries()
    assert (delivery["status_code"], delivery["status"]) == (0, "timed out")


def test_a_failing_receiver_is_recorded_with_its_status(gh: GitHubStandIn, receiver: Receiver) -> None:
    gh.webhook_url = receiver.url
    receiver.status = 500
    gh.remove_team_member("acme", "backend", "grace")
    assert gh.wait_for_deliveries(5)
    [delivery] = gh.deliveries()
    assert (delivery["status_code"], delivery["status"]) == (500, "Invalid HTTP Response: 500")
    assert len(receiver.received) == 1  # not retried


def test_uninstall_and_install_send_installation_webhooks(gh: GitHubStandIn, receiver: Receiver) -> None:
    gh.webhook_url = receiver.url
    token = integration(gh).get_access_token(INSTALLATION).token
    gh.uninstall(INSTALLATION)
    r = requests.get(f"{gh.api_url}/orgs/acme/teams", headers={"Authorization": f"token {token}"}, timeout=5)
    assert r.status_code == 401
    with pytest.raises(GithubException):
        integration(gh).get_org_installation("acme")
    gh.remove_team_member("acme", "backend", "grace")  # not installed: no membership webhook
    new_id = gh.install("acme")
    assert new_id != INSTALLATION and integration(gh).get_org_installation("acme").id == new_id
    assert gh.wait_for_deliveries(5)
    payloads = [(h["x-github-event"], json.loads(b)) for h, b in receiver.received]
    assert [(e, p["action"], p["installation"]["id"]) for e, p in payloads] == [
        ("installation", "deleted", INSTALLATION),
        ("installation", "created", new_id),
    ]
    installation = payloads[0][1]["installation"]
    assert installation["account"]["login"] == "acme" and installation["account"]["type"] == "Organization"
    assert installation["app_id"] == APP_ID and installation["permissions"]["members"] == "read"
    assert "membership" in installation["events"]
    assert payloads[0][1]["sender"]["login"] == "ada"


def test_adding_someone_outside_the_organization_sends_an_invitation(gh: GitHubStandIn, receiver: Receiver) -> None:
    gh.webhook_url = receiver.url
    g = Github(base_url=gh.api_url, auth=Auth.Token(gh.token_for("ada")), retry=None, seconds_between_requests=None)
    g.get_organization("acme").get_team_by_slug("frontend").add_membership(g.get_user("ops"))
    gh.accept_invitation("acme", "ops")
    assert gh.wait_for_deliveries(5)
    events = [(h["x-github-event"], json.loads(b)) for h, b in receiver.received]
    assert [(e, p["action"]) for e, p in events] == [
        ("organization", "member_invited"),
        ("organization", "member_added"),
        ("membership", "added"),
    ]
    assert events[0][1]["invitation"]["login"] == "ops" and events[0][1]["user"]["login"] == "ops"


def test_a_ping(gh: GitHubStandIn, receiver: Receiver) -> None:
    gh.webhook_url = receiver.url
    gh.ping()
    assert gh.wait_for_deliveries(5)
    [(headers, body)] = receiver.received
    payload = json.loads(body)
    assert headers["x-github-event"] == "ping"
    assert payload["hook_id"] == payload["hook"]["id"] == int(headers["x-github-hook-id"])
    assert payload["hook"]["app_id"] == APP_ID and payload["zen"]
