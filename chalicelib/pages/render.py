"""Rendering the dashboard's pages (Jinja2, autoescaped) and serving its static files, with the
security headers every page and file carries. Imported by the first page a request asks for.

A page is the structure only; its script fills it from the JSON API with the session cookie. What a
page handler decides itself is only who is logged in (else a redirect to /login) and, on a
namespace's pages, whether the caller can see the namespace (the API's own rule: else 404) and their
role there, which links to show."""

from __future__ import annotations

import hashlib
import mimetypes
import re
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlsplit

from chalice.app import Response

from chalicelib.api.registry import Call
from chalicelib.api.security import SESSION_COOKIE, cookie
from chalicelib.composition import get_container
from chalicelib.domain.errors import NotFoundError, UnauthenticatedError
from chalicelib.domain.model import role_at_least
from chalicelib.logs import get_logger
from chalicelib.pages.routes import ACCOUNT_SECTIONS, NAMESPACE_SECTIONS, Page, Section

if TYPE_CHECKING:
    from jinja2 import Environment

HERE = Path(__file__).resolve().parent
STATIC = HERE / "static"
TEMPLATES = HERE / "templates"

# No inline script or style anywhere: scripts and styles come from this app only; nothing may frame
# a page; the API is the only thing a page's script talks to.
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; font-src 'self'; "
    "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'; manifest-src 'self'"
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=(), payment=()",
}
DNS_LABEL = re.compile(r"[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?")
DEPLOYMENT_ID = re.compile(r"[0-9A-Z]{26}")
PARAMETERS = {"ns": DNS_LABEL, "svc": DNS_LABEL, "dep": DEPLOYMENT_ID}


@cache
def environment() -> Environment:
    from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

    env = Environment(
        loader=FileSystemLoader(str(TEMPLATES)),
        autoescape=select_autoescape(["html"], default=True),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.globals["static"] = lambda name: f"{base_path()}/static/{name}?v={static_files()[name][1][:12]}"
    return env


def base_path() -> str:
    """Where the app is served, as a path prefix: ``/api`` on API Gateway's own address (its stage),
    empty at the root of a custom domain or on the local cloud. Every link a page makes starts with
    it (the templates' ``base``, the scripts' ``ctx.base``); the paths in ``?next=`` do not."""
    return urlsplit(get_container().settings.public_url).path.rstrip("/")


def _own_path(path: str) -> str:
    """The path asked for without the base path (API Gateway's address names its stage in it)."""
    base = base_path()
    if base and (path == base or path.startswith(base + "/")):
        return path[len(base) :] or "/"
    return path


@cache
def static_files() -> dict[str, tuple[bytes, str]]:
    """Every static file by name: its bytes and their SHA-256 (the ETag, and the URL's version)."""
    return {
        p.name: (p.read_bytes(), hashlib.sha256(p.read_bytes()).hexdigest())
        for p in sorted(STATIC.iterdir())
        if p.is_file()
    }


def _html(body: str, status: int = 200, extra: dict[str, str] | None = None) -> Response:
    headers = {**SECURITY_HEADERS, "Content-Type": "text/html; charset=utf-8", "Cache-Control": "no-store"}
    return Response(body=body, status_code=status, headers={**headers, **(extra or {})})


def redirect(location: str) -> Response:
    headers: dict[str, str | list[str]] = {
        **SECURITY_HEADERS,
        "Location": location,
        "Cache-Control": "no-store",
        "Content-Type": "text/plain",
    }
    return Response(body="", status_code=302, headers=headers)


def safe_next(value: str | None) -> str | None:
    """A path on this site to go back to after logging in: never another site (``//host``, ``/\\host``)."""
    if not value or not value.startswith("/") or value.startswith(("//", "/\\")) or any(c in value for c in "\r\n"):
        return None
    return value


def _visible(sections: tuple[Section, ...], role: str | None, platform_admin: bool) -> list[Section]:
    return [
        s
        for s in sections
        if (not s.platform_admin or platform_admin) and (s.role is None or (role and role_at_least(role, s.role)))  # type: ignore[arg-type]
    ]


def error_page(status: int, title: str, message: str, request_id: str | None = None) -> Response:
    body = (
        environment()
        .get_template("error.html")
        .render(title=title, message=message, status=status, request_id=request_id, base=base_path())
    )
    return _html(body, status)


def page(spec: Page, request: Any, params: dict[str, str]) -> Response:
    call = Call(request, None, params)
    try:
        return _page(spec, call, params)
    except Exception:
        get_logger().exception("page failed", extra={"page": spec.key})
        return error_page(500, "Something went wrong", "The page could not be shown.", call.request_id)


def _page(spec: Page, call: Call, params: dict[str, str]) -> Response:
    c = get_container()
    principal = None
    session = cookie(call, SESSION_COOKIE)
    if session:
        try:
            principal = c.auth.authenticate_session(session)
        except UnauthenticatedError:
            principal = None
    stage = c.settings.stage
    if spec.public:
        if principal is not None:
            return redirect(base_path() + (safe_next(call.query.get("next")) or "/"))
        body = (
            environment()
            .get_template(f"{spec.key}.html")
            .render(page=spec, stage=stage, next=safe_next(call.query.get("next")) or "/", login=None, base=base_path())
        )
        return _html(body)
    if principal is None:
        return redirect(base_path() + "/login?next=" + quote(_own_path(call.path), safe="/"))
    for name, value in params.items():
        if not PARAMETERS[name].fullmatch(value):
            return error_page(404, "Not found", f"There is no such page: {_own_path(call.path)}.")
    role = None
    ns = params.get("ns")
    if ns is not None:
        try:
            role = c.auth.access(principal, ns).role
        except NotFoundError:
            # As the API answers: a namespace the caller cannot see does not exist for them.
            return error_page(404, "Namespace not found", f"You have no namespace called {ns}.")
    context = {
        "page": spec,
        "stage": stage,
        "base": base_path(),
        "login": principal.login,
        "platform_admin": principal.platform_admin,
        "ns": ns,
        "svc": params.get("svc"),
        "dep": params.get("dep"),
        "role": role,
        "account_sections": _visible(ACCOUNT_SECTIONS, None, principal.platform_admin),
        "namespace_sections": _visible(NAMESPACE_SECTIONS, role, principal.platform_admin) if ns else [],
    }
    return _html(environment().get_template(f"{spec.key}.html").render(**context))


def static(name: str, request: Any) -> Response:
    found = static_files().get(name)
    if found is None:
        return error_page(404, "Not found", "There is no such file.")
    data, digest = found
    etag = f'"{digest[:32]}"'
    headers: dict[str, str | list[str]] = {**SECURITY_HEADERS, "ETag": etag, "Cache-Control": "no-cache"}
    if (request.headers or {}).get("if-none-match") == etag:
        return Response(body="", status_code=304, headers=headers)
    content_type = {".js": "text/javascript", ".css": "text/css", ".svg": "image/svg+xml"}.get(
        Path(name).suffix, mimetypes.guess_type(name)[0] or "application/octet-stream"
    )
    return Response(
        body=data.decode(), status_code=200, headers={**headers, "Content-Type": f"{content_type}; charset=utf-8"}
    )
