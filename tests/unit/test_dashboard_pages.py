"""The dashboard's pages through the app (Chalice's test client, moto in-process): who gets a page
and who a redirect or a 404 (the API's rules), the security headers and the CSP, escaping, the
session cookie's attributes, logout ending the session on the server, the static files, and Jinja2
kept out of the API's cold start."""

from __future__ import annotations

import dataclasses
import re
import subprocess
import sys
from datetime import timedelta
from typing import Any

import pytest

from chalicelib.domain.model import Account, Member, Namespace
from chalicelib.domain.services.auth import hash_secret
from tests.helpers import ROOT

NS = "acme-backend"
USERS = {"ada": (1, "owner"), "grace": (3, "member")}


@pytest.fixture
def web(container: Any, client: Any, clock: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.setenv("PLATFORM_LOCAL_KEY", "a local key")
    s = container.stores
    s.namespaces.create(Namespace(NS, "acme", 1, "backend", 2, "local", "team", "active", clock.now(), "user:ada"), [])
    s.members.apply(NS, [Member(NS, uid, login, role, "team") for login, (uid, role) in USERS.items()], [], [])
    sessions = {}
    for login, (uid, _) in {**USERS, "ken": (9, None)}.items():
        container.stores.accounts.upsert(Account(uid, login), clock.now())
        cookie = f"session-of-{login}-0123456789"
        s.windows.put_session(hash_secret(cookie), uid, login, clock.now() + timedelta(days=7))
        sessions[login] = cookie

    class Web:
        def get(self, path: str, who: str | None = None, **headers: str) -> Any:
            if who is not None:
                headers["Cookie"] = f"platform_session={sessions[who]}"
            return client.http.get(path, headers=headers)

        def post(self, path: str, who: str, **headers: str) -> Any:
            headers["Cookie"] = f"platform_session={sessions[who]}"
            return client.http.post(path, headers=headers, body=b"")

    return Web()


def pages() -> list[str]:
    from chalicelib.pages.routes import PAGES

    concrete = {"ns": NS, "svc": "hello", "dep": "01J9ZQ4Y8M3N6P7R8S9T0V1W2X"}
    return [re.sub(r"{(\w+)}", lambda m: concrete[m.group(1)], p.path) for p in PAGES]


def test_every_page_but_login_sends_a_visitor_without_a_session_to_the_login_page(web: Any) -> None:
    for path in pages():
        r = web.get(path)
        if path == "/login":
            assert r.status_code == 200
            continue
        assert r.status_code == 302, path
        assert r.headers["Location"] == f"/login?next={path}"


def test_the_login_page_goes_back_only_to_this_site_and_escapes_what_it_is_given(web: Any) -> None:
    attack = '/x"><script>alert(1)</script>'
    body = web.get(f"/login?next={attack}").body.decode()
    assert "<script>alert(1)</script>" not in body
    assert 'data-next="/x&#34;&gt;&lt;script&gt;alert(1)&lt;/script&gt;"' in body
    for elsewhere in ("//evil.example", "/\\evil.example", "https://evil.example"):
        assert 'data-next="/"' in web.get(f"/login?next={elsewhere}").body.decode()
    # logged in already: straight on, and never to another site
    assert web.get("/login?next=/tokens", who="ada").headers["Location"] == "/tokens"
    assert web.get("/login?next=//evil.example", who="ada").headers["Location"] == "/"


def test_every_page_carries_the_security_headers_and_no_inline_script_or_style(web: Any) -> None:
    for path in pages():
        r = web.get(path, who=None if path == "/login" else "ada")
        assert r.status_code == 200, (path, r.status_code)
        csp = r.headers["Content-Security-Policy"]
        directives = dict(d.strip().split(" ", 1) for d in csp.split(";"))
        assert directives["script-src"] == "'self'" and "unsafe" not in csp
        assert directives["frame-ancestors"] == "'none'" and directives["default-src"] == "'none'"
        assert r.headers["X-Content-Type-Options"] == "nosniff" and r.headers["X-Frame-Options"] == "DENY"
        assert r.headers["Cache-Control"] == "no-store"
        body = r.body.decode()
        assert not re.search(r"<script(?![^>]*\bsrc=)", body), path  # every script is a file of the app
        assert not re.search(r"\sstyle=|\son[a-z]+=", body), path  # no inline style or handler
        assert not re.search(r"(src|href)=\"(https?:)?//", body), path  # no asset from elsewhere (no CDN)


def test_a_namespace_the_caller_cannot_see_is_not_found_as_in_the_api(web: Any) -> None:
    for path in (f"/namespaces/{NS}", f"/namespaces/{NS}/services/hello", "/namespaces/acme-other/usage"):
        r = web.get(path, who="ken")
        assert r.status_code == 404, path
        assert "Namespace not found" in r.body.decode()
    assert web.get("/namespaces/Not_A_Label", who="ada").status_code == 404
    assert web.get(f"/namespaces/{NS}/services/hello/deployments/not-an-id", who="ada").status_code == 404


def test_the_navigation_shows_a_role_only_the_sections_the_api_lets_it_use(web: Any) -> None:
    owner = web.get(f"/namespaces/{NS}", who="ada").body.decode()
    member = web.get(f"/namespaces/{NS}", who="grace").body.decode()
    for section in ("Billing", "Audit log"):
        assert f">{section}</a>" in owner and f">{section}</a>" not in member
    assert ">Usage</a>" in member and 'aria-current="page">Services</a>' in member
    assert 'id="deploy-form"' in member  # members deploy
    assert 'data-role="member"' in member and 'data-login="grace"' in member


def test_the_session_cookie_is_httponly_lax_and_secure_outside_the_local_stage(container: Any) -> None:
    from chalicelib.api.auth import session_cookie

    local = session_cookie("abc", container.settings)
    assert "HttpOnly" in local and "SameSite=Lax" in local and "Path=/" in local and "Secure" not in local
    for stage in ("dev", "prod"):  # even behind a plain-http URL by mistake
        assert session_cookie("abc", dataclasses.replace(container.settings, stage=stage)).endswith("; Secure")
    https = dataclasses.replace(container.settings, public_url="https://platform.example.com")
    assert session_cookie("abc", https).endswith("; Secure")


def test_logout_ends_the_session_on_the_server_and_needs_the_csrf_header(web: Any) -> None:
    refused = web.post("/v1/auth/logout", who="grace")  # a cross-site form cannot set X-Requested-With
    assert refused.status_code == 403 and b"x-requested-with" in refused.body
    assert web.get("/v1/me", who="grace").status_code == 200
    assert web.post("/v1/auth/logout", who="grace", **{"X-Requested-With": "dashboard"}).status_code == 204
    assert web.get("/v1/me", who="grace").status_code == 401
    assert web.get("/tokens", who="grace").status_code == 302


def test_static_files_are_served_with_their_type_an_etag_and_the_same_headers(web: Any) -> None:
    from chalicelib.pages.render import static_files

    assert {"dashboard.js", "dashboard.css", "favicon.svg"} <= set(static_files())
    js = web.get("/static/dashboard.js")
    assert js.status_code == 200 and js.headers["Content-Type"].startswith("text/javascript")
    assert js.headers["X-Content-Type-Options"] == "nosniff" and "Content-Security-Policy" in js.headers
    assert web.get("/static/dashboard.js", **{"If-None-Match": js.headers["ETag"]}).status_code == 304
    assert web.get("/static/dashboard.css").headers["Content-Type"].startswith("text/css")
    assert web.get("/static/nothing.js").status_code == 404
    assert web.get("/static/..%2Fcomposition.py").status_code == 404


def test_scripts_never_write_markup() -> None:
    """Everything a page shows is set as text (``el``/``textContent``): no script parses HTML."""
    from chalicelib.pages.render import STATIC

    for path in STATIC.glob("*.js"):
        source = path.read_text()
        for sink in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval(", "new Function"):
            assert sink not in source, f"{path.name} uses {sink}"


def test_importing_the_app_imports_no_jinja2() -> None:
    code = "import sys, app; print('jinja2' in sys.modules, 'chalicelib.pages.render' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]


API_GATEWAY = "https://abc123.execute-api.us-east-1.amazonaws.com/api"


def test_on_api_gateways_own_address_every_link_and_redirect_keeps_its_stage(
    web: Any, container: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Served at https://<id>.execute-api.<region>.amazonaws.com/api (no custom domain), a link to
    /login would leave the stage and answer API Gateway's 403: every link starts with /api."""
    monkeypatch.setattr(container, "settings", dataclasses.replace(container.settings, public_url=API_GATEWAY))
    assert web.get("/tokens").headers["Location"] == "/api/login?next=/tokens"
    login = web.get("/login?next=/tokens").body.decode()
    assert 'data-base="/api"' in login
    assert web.get("/login?next=/tokens", who="ada").headers["Location"] == "/api/tokens"
    for path in [*pages(), "/namespaces/Not_A_Label"]:
        body = web.get(path, who="ada").body.decode() if path != "/login" else login
        links = re.findall(r'(?:href|src|action)="([^"#][^"]*)"', body)
        assert links, path
        assert all(link.startswith("/api/") for link in links), (path, [x for x in links if not x.startswith("/api/")])


def test_the_path_asked_for_loses_the_stage_in_next(container: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """API Gateway's requestContext.path names the stage (/api/tokens); ``?next=`` does not (/tokens)."""
    from chalicelib.pages.render import _own_path

    monkeypatch.setattr(container, "settings", dataclasses.replace(container.settings, public_url=API_GATEWAY))
    assert (_own_path("/api/tokens"), _own_path("/api"), _own_path("/apix")) == ("/tokens", "/", "/apix")


def test_scripts_make_every_link_and_call_under_the_base_path() -> None:
    """The scripts' links go through ``el`` (which prefixes ``href``) or ``href()``; their calls through ``api``."""
    from chalicelib.pages.render import STATIC

    for path in STATIC.glob("*.js"):
        source = path.read_text()
        assert source.count("location.assign(") == source.count("location.assign(href("), path.name
        assert "fetch(" not in source or (path.name == "dashboard.js" and source.count("fetch(") == 1), path.name


def test_the_billing_page_has_the_invoices_and_a_button_to_stripes_billing_portal(web: Any) -> None:
    body = web.get(f"/namespaces/{NS}/billing", who="ada").body.decode()
    assert 'id="invoices-title">Invoices</h2>' in body and 'id="invoices"' in body
    assert '<button type="button" id="portal">Manage payment</button>' in body
    script = (ROOT / "chalicelib/pages/static/page-billing.js").read_text()
    # the routes it reads are the API's own, and the portal's short-lived address is asked for on click
    for call in ('nsPath("/invoices")', 'nsPath("/billing/portal")', "bill.provider"):
        assert call in script


def test_the_alerts_page_is_in_every_members_navigation_and_only_admins_get_the_channel_form(web: Any) -> None:
    owner = web.get(f"/namespaces/{NS}/alerts", who="ada").body.decode()
    member = web.get(f"/namespaces/{NS}/alerts", who="grace").body.decode()
    for body in (owner, member):
        assert 'aria-current="page">Alerts</a>' in body
        assert all(f'id="{part}"' in body for part in ("channels", "rules", "history"))
        assert 'src="/static/page-alerts.js' in body
    assert 'id="channel-form"' in owner and 'id="channel-form"' not in member
    assert ">Alerts</a>" in web.get(f"/namespaces/{NS}/usage", who="grace").body.decode()
    script = (ROOT / "chalicelib/pages/static/page-alerts.js").read_text()
    calls = ('alertsPath("/channels")', "/channels/${enc(channel.id)}/test", 'alertsPath("/rules")', "?limit=50")
    for call in calls:
        assert call in script


def test_the_reports_page_lists_reports_to_everyone_and_gives_admins_the_schedule_and_send_now(web: Any) -> None:
    owner = web.get(f"/namespaces/{NS}/reports", who="ada").body.decode()
    member = web.get(f"/namespaces/{NS}/reports", who="grace").body.decode()
    for body in (owner, member):
        assert 'aria-current="page">Reports</a>' in body and 'id="reports"' in body
        assert 'src="/static/page-reports.js' in body
    for admin_only in ('id="schedule-form"', 'id="send-now"'):
        assert admin_only in owner and admin_only not in member
    script = (ROOT / "chalicelib/pages/static/page-reports.js").read_text()
    for call in ('reportsPath("/schedule")', 'reportsPath("/send")', "reportsPath()"):
        assert call in script
    # a sent report rendered, in a tab of its own (the API serves it sandboxed), beside its CSV
    assert 'href: r.html_url, target: "_blank", rel: "noopener"' in script and "href: r.csv_url" in script


def test_the_new_pages_escape_the_namespace_they_are_asked_for(web: Any) -> None:
    for section in ("alerts", "reports", "billing"):
        r = web.get(f"/namespaces/a%3Cb%3Ex/{section}", who="ada")
        assert r.status_code == 404, section
        assert "<b>" not in r.body.decode()


def test_the_regions_page_is_in_the_navigation_of_platform_admins_only(
    web: Any, container: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert ">Regions</a>" not in web.get("/", who="ada").body.decode()
    monkeypatch.setattr(container.auth, "_admins", frozenset({"ada"}))
    body = web.get("/regions", who="ada").body.decode()
    assert 'aria-current="page">Regions</a>' in body and 'id="regions"' in body
    assert 'src="/static/page-regions.js' in body
    assert ">Regions</a>" in web.get("/", who="ada").body.decode()
    assert ">Regions</a>" not in web.get("/", who="grace").body.decode()
