"""The dashboard in a real browser: Playwright for Python driving Debian's Chromium (never a browser
Playwright downloads) against the local cloud. One scripted journey, as a newcomer would take it: log
in locally, onboard acme/backend, deploy the example and watch it succeed, break it with a push and
see the rollback, roll back by hand, set a config var, create a token, set a budget, log out. Every
page the journey opens is checked by axe-core (from the npm registry, pinned, injected into the page:
no serious or critical violation) and screenshotted at 375 and 1440 px into test-artifacts/dashboard/.
Any console error, page error, failed request or error answer fails the test.

Without a browser (``/usr/bin/chromium``, or ``PLATFORM_CHROMIUM``) or npm, the module is skipped
with the reason; under ``CI=true`` it fails instead (``.ci/run`` installs Chromium with apt)."""

from __future__ import annotations

import base64
import hashlib
import os
import shlex
import shutil
import subprocess
import tarfile
import tempfile
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import requests

from chalicelib.domain.clock import SystemClock
from localcloud.github_push import push
from tests.fixtures import start_platform
from tests.helpers import ROOT

pytestmark = [pytest.mark.browser, pytest.mark.slow]

NS = "acme-backend"
AXE_VERSION = "4.14.1"
AXE_INTEGRITY = "sha512-FHfa+lmNjQZfJz1q8wKqIDwC6DExcHt/pkjNQb09a3NPjCKg2rhu5qb2S4r76ASyFNNtuFooJpZe37OgudVGtQ=="
ARTIFACTS = ROOT / "test-artifacts" / "dashboard"
CACHE = ROOT / ".cache"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
WIDTHS = {"narrow": (375, 812), "wide": (1440, 900)}


def unavailable(reason: str) -> None:
    if os.environ.get("CI") == "true":
        pytest.fail(f"browser tests cannot run in CI: {reason}")
    pytest.skip(f"browser tests skipped: {reason}")


def chromium() -> str:
    path = os.environ.get("PLATFORM_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
    if not Path(path).is_file():
        unavailable("no Chromium (apt-get install chromium, or set PLATFORM_CHROMIUM)")
    return path


def axe_source() -> str:
    """axe-core from the npm registry (``npm pack``), checked against its pinned integrity and kept in
    .cache/: nothing is fetched while a page is tested."""
    target = CACHE / f"axe-core-{AXE_VERSION}.min.js"
    if not target.exists():
        if shutil.which("npm") is None:
            unavailable("npm is needed once to fetch axe-core")
        CACHE.mkdir(exist_ok=True)
        with tempfile.TemporaryDirectory() as tmp:
            subprocess.run(
                ["npm", "pack", f"axe-core@{AXE_VERSION}", "--silent"], cwd=tmp, check=True, capture_output=True
            )
            tarball = Path(tmp) / f"axe-core-{AXE_VERSION}.tgz"
            digest = "sha512-" + base64.b64encode(hashlib.sha512(tarball.read_bytes()).digest()).decode()
            assert digest == AXE_INTEGRITY, f"axe-core {AXE_VERSION} is not the package pinned: {digest}"
            with tarfile.open(tarball) as tar:
                member = tar.extractfile("package/axe.min.js")
                assert member is not None
                target.write_bytes(member.read())
    return target.read_text()


class Browser:
    """One Chromium with a fresh profile, and every problem the pages show collected."""

    def __init__(self, playwright: Any, executable: str, base: str) -> None:
        self.profile = tempfile.mkdtemp(prefix="chromium-profile-")
        self.context = playwright.chromium.launch_persistent_context(
            self.profile,
            executable_path=executable,
            headless=True,
            args=CHROMIUM_ARGS,
            viewport={"width": 1440, "height": 900},
            base_url=base,
        )
        self.context.set_default_timeout(20_000)
        self.base = base
        self.problems: list[str] = []
        self.page = self.context.pages[0] if self.context.pages else self.context.new_page()
        page = self.page
        page.on("console", lambda m: m.type == "error" and self.problems.append(f"console: {m.text}"))
        page.on("pageerror", lambda e: self.problems.append(f"page error: {e}"))
        page.on("requestfailed", self._failed)
        page.on(
            "response",
            lambda r: r.status >= 400 and self.problems.append(f"answer {r.status}: {r.request.method} {r.url}"),
        )
        self.axe = axe_source()
        self.checked: list[str] = []

    def _failed(self, request: Any) -> None:
        # A read still in flight when the test navigates away (a page polls) is cancelled by the
        # browser (ERR_ABORTED): not a failure. Anything else is.
        if request.method == "GET" and request.failure == "net::ERR_ABORTED":
            return
        self.problems.append(f"failed: {request.method} {request.url} {request.failure}")

    def close(self) -> None:
        self.context.close()
        shutil.rmtree(self.profile, ignore_errors=True)

    def check(self, name: str) -> None:
        """axe-core on the page as it is now (no serious or critical violation), and screenshots at
        both widths."""
        page = self.page
        page.wait_for_load_state("networkidle")
        page.evaluate(self.axe)  # evaluated through the DevTools protocol: the page's CSP still applies to itself
        result = page.evaluate(
            "async () => (await axe.run(document, {resultTypes: ['violations']})).violations"
            ".map(v => ({id: v.id, impact: v.impact, help: v.help, nodes: v.nodes.map(n => n.target.join(' '))}))"
        )
        bad = [v for v in result if v["impact"] in ("serious", "critical")]
        assert not bad, f"{name}: accessibility violations: {bad}"
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        for label, (width, height) in WIDTHS.items():
            page.set_viewport_size({"width": width, "height": height})
            page.screenshot(path=str(ARTIFACTS / f"{name}-{label}.png"), full_page=True)
            if label == "narrow":  # nothing wider than the screen: usable at 375 px
                overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
                assert overflow <= 1, f"{name}: the page is {overflow}px wider than a 375px screen"
        page.set_viewport_size({"width": 1440, "height": 900})
        self.checked.append(name)

    def assert_clean(self) -> None:
        assert not self.problems, "\n".join(self.problems)


@pytest.fixture(scope="module")
def platform(tmp_path_factory: pytest.TempPathFactory, env_restored: None) -> Iterator[dict[str, Any]]:
    from chalicelib.composition import set_container

    executable = chromium()
    axe_source()
    from playwright.sync_api import sync_playwright

    cloud = start_platform(tmp_path_factory.mktemp("dashboard"), SystemClock())
    repo = tmp_path_factory.mktemp("repo") / "hello"
    subprocess.run(
        ["bash", str(ROOT / "examples" / "make-example-repo.sh"), str(repo)], check=True, capture_output=True
    )
    with sync_playwright() as playwright:
        browser = Browser(playwright, executable, cloud.api_url)
        try:
            yield {"cloud": cloud, "browser": browser, "repo": repo, "home": tmp_path_factory.mktemp("home")}
        finally:
            browser.close()
            cloud.stop()
            set_container(None)


def post_usage(api: str) -> None:
    """Usage of the service hello an hour ago, posted with the region's ingest token (minted by ops,
    the local stage's platform admin)."""
    ops = requests.post(f"{api}/v1/auth/local-login", json={"login": "ops"}, timeout=10).json()["token"]
    minted = requests.post(
        f"{api}/v1/regions/local/ingest-tokens",
        json={"name": "browser test"},
        headers={"Authorization": f"Bearer {ops}"},
        timeout=10,
    )
    assert minted.status_code == 201, minted.text
    when = (datetime.now(UTC) - timedelta(hours=1)).isoformat()
    events = [
        {"id": f"b-{meter}", "namespace": NS, "meter": meter, "value": value, "timestamp": when, "service": "hello"}
        for meter, value in (("requests", 1200), ("service_hours", 1))
    ]
    r = requests.post(
        f"{api}/v1/usage/events",
        json={"events": events},
        headers={"Authorization": f"Bearer {minted.json()['token']}"},
        timeout=10,
    )
    assert r.json()["accepted"] == 2, r.text


def wait_text(page: Any, selector: str, text: str, timeout: float = 90) -> None:
    page.locator(selector).filter(has_text=text).first.wait_for(timeout=timeout * 1000)


def test_a_newcomer_logs_in_onboards_deploys_and_operates_a_service(platform: dict[str, Any]) -> None:
    from playwright.sync_api import expect

    expect.set_options(timeout=20_000)  # as the browser's own: a loaded CI machine is slow
    b: Browser = platform["browser"]
    page = b.page
    cloud = platform["cloud"]

    # Logged out, every page leads to the login page, which comes back to where it was going.
    page.goto("/tokens")
    assert page.url.endswith("/login?next=/tokens")
    b.check("login")
    page.get_by_label("GitHub login", exact=True).fill("ada")
    page.get_by_role("button", name="Log in", exact=True).click()
    page.wait_for_url(f"{b.base}/tokens")
    cookie = next(c for c in b.context.cookies() if c["name"] == "platform_session")
    assert cookie["httpOnly"] and cookie["sameSite"] == "Lax"
    assert page.evaluate("document.cookie") == "", "the session cookie is out of scripts' reach"

    # No namespace yet: the empty state says what to do.
    page.goto("/")
    wait_text(page, "#namespaces", "No namespace yet")
    b.check("home-empty")
    page.get_by_role("link", name="Onboard a GitHub team").first.click()
    page.wait_for_url(f"{b.base}/onboard")
    page.get_by_label("GitHub organization", exact=True).fill("acme")
    page.get_by_label("Team (its slug)", exact=True).fill("backend")
    page.get_by_label("Region", exact=True).select_option("local")
    page.get_by_role("button", name="Onboard").click()
    wait_text(page, "#progress-next", "Done")
    b.check("onboard")
    page.get_by_role("link", name=f"deploy a service in {NS}").click()
    page.wait_for_url(f"{b.base}/namespaces/{NS}")
    wait_text(page, "#services", "No service yet")
    b.check("services-empty")
    # The empty state's commands work as shown, from the checkout, against this very address.
    commands = page.locator("#services pre").inner_text().splitlines()
    assert commands[0] == f".venv/bin/platform init --local --api-url {b.base} --login ada --namespace {NS} --yes"
    assert commands[1].startswith("examples/make-example-repo.sh /tmp/hello")
    home = platform["home"]
    init = subprocess.run(
        shlex.split(commands[0]), cwd=ROOT, env={**os.environ, "HOME": str(home)}, capture_output=True
    )
    assert init.returncode == 0, init.stderr
    assert f"PLATFORM_API_URL={b.base}" in (home / ".micro" / "platform.env").read_text()

    # Deploy the example from its repository; the deployment's page follows it to success.
    page.get_by_label("Service name", exact=True).fill("hello")
    page.get_by_label("Source", exact=True).fill(str(platform["repo"]))
    page.get_by_role("button", name="Deploy").click()
    page.wait_for_url(f"**/namespaces/{NS}/services/hello/deployments/*")
    wait_text(page, "#dep-status", "succeeded")
    assert page.locator("#dep-steps li").count() >= 3
    b.check("deployment")
    page.get_by_role("link", name="hello").first.click()
    page.wait_for_url(f"{b.base}/namespaces/{NS}/services/hello")
    wait_text(page, "#svc-facts", "running")

    # A config var: markup in its value is shown as text, never run; the change redeploys.
    page.get_by_label("Name", exact=True).fill("GREETING")
    page.get_by_label("Value", exact=True).fill("<img src=x onerror=alert(1)>hola")
    page.get_by_role("button", name="Save and redeploy").click()
    wait_text(page, "#config", "<img src=x onerror=alert(1)>hola")
    assert page.locator("#config img").count() == 0
    page.get_by_label("Name", exact=True).fill("API_KEY")
    page.get_by_label("Value", exact=True).fill("s3cr3t-value-never-shown")
    page.get_by_label("Secret", exact=True).check()
    page.get_by_role("button", name="Save and redeploy").click()
    wait_text(page, "#config", "API_KEY")
    assert "s3cr3t-value-never-shown" not in page.content()
    wait_text(page, "#deployments-live", "No deployment is running")
    wait_text(page, "#deployments tbody tr", "config")

    # Break it with a push from a linked repository: the service page shows the rollback.
    page.goto(f"/namespaces/{NS}/repos")
    wait_text(page, "#repos", "No repository linked")
    page.get_by_label("Repository (owner/name)", exact=True).fill("acme/hello")
    page.get_by_role("button", name="Link").click()
    wait_text(page, "#repos", "acme/hello")
    b.check("repos")
    page.goto(f"/namespaces/{NS}/services/hello")
    wait_text(page, "#svc-facts", "running")
    good = page.locator("#svc-facts .mono").first.get_attribute("title")
    broken = push(
        cloud.github.url,
        "acme/hello",
        {"server.py": "import sys\nprint('boom: <b>no DATABASE_URL</b>')\nsys.exit(3)\n"},
        "Break the server",
    )["sha"]
    wait_text(page, "#deployments tbody tr", "rolled back")
    row = page.locator("#deployments tbody tr").filter(has_text="rolled back").first
    assert broken[:10] in row.inner_text() and "push" in row.inner_text()
    wait_text(page, "#svc-facts", "running")
    assert page.locator("#svc-facts .mono").first.get_attribute("title") == good  # the good version still runs
    b.check("service")
    row.get_by_role("link").click()
    wait_text(page, "#dep-status", "rolled back")
    wait_text(page, "#dep-facts", "exit")
    if "boom" in page.locator("#dep-logs").inner_text():  # a log line with markup stays text
        assert page.locator("#dep-logs b").count() == 0
    page.go_back()

    # Roll back by hand, with a confirmation.
    wait_text(page, "#svc-facts", "running")
    assert not page.get_by_role("button", name="Resume auto-deploy").is_visible()
    page.get_by_role("button", name="Roll back").click()
    expect(page.locator("#confirm")).to_be_visible()
    page.locator("#confirm-ok").click()
    wait_text(page, "#deployments tbody tr", "rollback by user:ada")
    wait_text(page, "#deployments-live", "No deployment is running")
    expect(page.get_by_role("button", name="Resume auto-deploy")).to_be_visible()

    # A token, shown once.
    page.goto("/tokens")
    expect(page.locator("#token-namespace")).to_have_value(NS, timeout=20_000)  # filled once /v1/me answered
    page.get_by_label("Name", exact=True).fill("ci")
    page.get_by_label("deploy", exact=True).check()
    page.get_by_role("button", name="Create token").click()
    page.locator("#token-created").wait_for()
    secret = page.locator("#token-secret").inner_text()
    assert secret.startswith("mp_pat_")
    wait_text(page, "#tokens", "ci")
    b.check("tokens")
    page.reload()
    wait_text(page, "#tokens", "ci")
    assert secret not in page.content(), "a token's secret is shown once"
    auth = {"Authorization": f"Bearer {secret}"}
    assert requests.get(f"{cloud.api_url}/v1/namespaces/{NS}", headers=auth, timeout=10).ok

    # A budget.
    page.goto(f"/namespaces/{NS}/billing")
    wait_text(page, "#billing", "Invoice preview")
    page.get_by_label("Monthly limit on usage charges (USD)", exact=True).fill("50")
    page.get_by_label("Hard cap", exact=False).check()
    page.get_by_role("button", name="Save budget").click()
    wait_text(page, "#budget-state", "$50.00")
    expect(page.locator("#invoices")).not_to_have_attribute("aria-busy", "true")
    expect(page.get_by_role("button", name="Manage payment")).to_be_visible()
    b.check("billing")

    # Alerts: a Slack channel and a test message, which the local cloud's Slack stand-in receives.
    page.goto(f"/namespaces/{NS}/alerts")
    wait_text(page, "#channels", "owners")
    hook = cloud.slack.webhook_url("dashboard")
    page.get_by_label("Kind", exact=True).select_option("slack")
    page.get_by_label("Name", exact=True).fill("ops <room>")
    page.get_by_label("Target", exact=True).fill(hook)
    page.get_by_role("button", name="Add channel").click()
    row = page.locator("#channels tr").filter(has_text="ops <room>")
    expect(row).to_be_visible()
    page.get_by_role("button", name="Test ops <room>").click()
    expect(row).to_contain_text("sent")
    expect(page.locator("#status")).to_contain_text("delivered")
    assert cloud.slack.received(hook), "the Slack stand-in received the test message"
    expect(page.locator("#rules")).not_to_have_attribute("aria-busy", "true")
    expect(page.locator("#history")).not_to_have_attribute("aria-busy", "true")
    b.check("alerts")

    # Reports: the schedule changed (its owners' email channel kept), and one sent now.
    page.goto(f"/namespaces/{NS}/reports")
    wait_text(page, "#schedule", "email to owners")
    page.get_by_label("Frequency", exact=True).select_option("daily")
    page.get_by_label("Local hour (0 to 23)", exact=True).fill("7")
    page.get_by_role("button", name="Save schedule").click()
    wait_text(page, "#schedule", "07:00")
    expect(page.locator("#schedule")).to_contain_text("daily")
    page.get_by_role("button", name="Send now").click()
    expect(page.locator("#reports tbody tr")).not_to_have_count(0)
    # the page follows the report until it is sent (to the owners, by the SES stand-in)
    expect(page.locator("#reports tbody tr").first).to_contain_text("sent", timeout=90_000)
    b.check("reports")
    # the report as it was sent, rendered in a tab of its own (a sandboxed document)
    with page.expect_popup() as opened:
        page.locator("#reports tbody tr").first.locator('a[target="_blank"]').click()
    report = opened.value
    expect(report.get_by_text("Daily usage report")).to_be_visible()
    expect(report.get_by_text(NS).first).to_be_visible()
    report.close()

    # Usage, as a region's runtime side reports it: a chart per meter, the numbers in a table.
    post_usage(cloud.api_url)
    page.goto(f"/namespaces/{NS}/usage")
    page.get_by_label("By", exact=True).select_option("hour")
    page.get_by_label("Period", exact=True).select_option("24h")
    page.get_by_role("button", name="Show").click()
    wait_text(page, "#usage", "Requests: 1200 request")
    assert page.locator("#usage svg.chart rect").count() >= 1
    assert "hello" in page.locator("#usage table").first.inner_text()
    b.check("usage")

    for name, path, ready in (
        ("members", f"/namespaces/{NS}/members", "#members table"),
        ("audit", f"/namespaces/{NS}/audit", "#audit table"),
        ("plans", "/plans", "#plans section"),
        ("home", "/", "#namespaces table"),
    ):
        page.goto(path)
        page.locator(ready).first.wait_for()
        b.check(name)
    audit = page.goto(f"/namespaces/{NS}/audit")
    assert audit is not None and audit.ok
    wait_text(page, "#audit", "user:ada")

    # The namespace switcher lists the caller's namespaces with their role.
    page.locator("#switcher summary").click()
    page.locator("#switcher-list a").filter(has_text=f"{NS} (owner)").click()
    page.wait_for_url(f"{b.base}/namespaces/{NS}")
    wait_text(page, "#services", "hello")
    # The list shows each service's instances (the version running), as its own page does.
    instances = page.locator("#services tbody tr").filter(has_text="hello").locator("td").nth(3)
    expect(instances).to_contain_text("running")

    # Keyboard: the skip link is the first stop and leads to the content.
    page.goto("/")
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.textContent") == "Skip to content"

    # Logging out ends the session on the server: the old cookie no longer works.
    session = cookie["value"]
    page.get_by_role("button", name="Log out").click()
    page.wait_for_url(f"{b.base}/login")
    me = requests.get(f"{cloud.api_url}/v1/me", cookies={"platform_session": session}, timeout=10)
    assert me.status_code == 401
    b.assert_clean()


def test_a_platform_admin_sees_the_regions_and_mints_and_revokes_an_ingest_token(platform: dict[str, Any]) -> None:
    """ops, the local stage's platform admin: the region's status and capacity, a token minted (its
    secret shown once) and revoked. Logs out at the end, as the journey starts logged out."""
    from playwright.sync_api import expect

    expect.set_options(timeout=20_000)
    b: Browser = platform["browser"]
    page = b.page
    page.goto("/login?next=/regions")
    page.get_by_label("GitHub login", exact=True).fill("ops")
    page.get_by_role("button", name="Log in", exact=True).click()
    page.wait_for_url(f"{b.base}/regions")
    wait_text(page, "#regions", "local")
    page.get_by_label("Name of a new ingest token for local", exact=True).fill("browser <region>")
    page.get_by_role("button", name="Mint an ingest token for local", exact=True).click()
    expect(page.locator("#ingest-secret")).to_contain_text("mp_ing_")
    row = page.locator("#regions tr").filter(has_text="browser <region>")
    expect(row).to_be_visible()
    b.check("regions")
    page.get_by_role("button", name="Revoke browser <region>", exact=True).click()
    page.locator("#confirm-ok").click()
    expect(row).to_have_count(0)
    page.get_by_role("button", name="Log out").click()
    page.wait_for_url(f"{b.base}/login")
    b.assert_clean()
