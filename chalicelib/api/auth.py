"""Login: the device flow (CLI), the web flow (dashboard), logout, and the local stage's login."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlsplit

from chalice.app import Blueprint, Response

from chalicelib.api.registry import Auth, Call, registry
from chalicelib.api.security import SESSION_COOKIE, cookie
from chalicelib.composition import get_container
from chalicelib.domain.errors import DependencyUnavailableError, NotFoundError, OAuthError, UnauthenticatedError

bp = Blueprint(__name__)
S = "chalicelib.api.schemas.accounts"
BROWSER_COOKIE = "platform_oauth"


def _login_answer(result: Any) -> dict[str, Any]:
    return {
        "token": result.secret,
        "token_id": result.token.id,
        "login": result.account.login,
        "expires_at": result.token.expires_at,
    }


@registry.route(
    bp,
    "/v1/auth/device",
    "POST",
    tag="auth",
    response=f"{S}:DeviceStartOut",
    errors=(DependencyUnavailableError,),
    summary="Start a device-flow login (the CLI)",
)
def start_device_login(call: Call) -> dict[str, Any]:
    grant = get_container().login.start_device()
    return {
        "device_code": grant.device_code,
        "user_code": grant.user_code,
        "verification_uri": grant.verification_uri,
        "interval": grant.interval,
        "expires_in": grant.expires_in,
    }


@registry.route(
    bp,
    "/v1/auth/device/token",
    "POST",
    tag="auth",
    request=f"{S}:DeviceTokenIn",
    response=f"{S}:LoginOut",
    errors=(OAuthError,),
    summary="Poll a device-flow login: 400 authorization_pending | slow_down | expired_token | "
    "access_denied, or a platform token",
)
def poll_device_login(call: Call) -> dict[str, Any]:
    return _login_answer(get_container().login.poll_device(call.body.device_code))


def _secure(settings: Any) -> str:
    """Cookies are Secure outside the local stage (and wherever the platform is served over https)."""
    return "; Secure" if settings.stage != "local" or settings.public_url.startswith("https://") else ""


def session_cookie(value: str, settings: Any) -> str:
    """The dashboard's session cookie: HttpOnly (no script reads it), SameSite=Lax, the session's 7 days."""
    return f"{SESSION_COOKIE}={value}; HttpOnly; SameSite=Lax; Path=/; Max-Age=604800{_secure(settings)}"


@registry.route(
    bp,
    "/v1/auth/github/login",
    "GET",
    tag="auth",
    status=302,
    response_content_type="text/plain",
    summary="Start a browser login: a redirect to GitHub with a state bound to this browser",
)
def web_login(call: Call) -> Response:
    c = get_container()
    url, browser = c.login.start_web(f"{c.settings.public_url}/v1/auth/github/callback")
    return Response(
        body="",
        status_code=302,
        headers={
            "Location": url,
            "Set-Cookie": f"{BROWSER_COOKIE}={browser}; HttpOnly; SameSite=Lax; Path=/v1/auth; Max-Age=600"
            + _secure(c.settings),
            "Content-Type": "text/plain",
        },
    )


@registry.route(
    bp,
    "/v1/auth/github/callback",
    "GET",
    tag="auth",
    status=302,
    response_content_type="text/plain",
    errors=(UnauthenticatedError, OAuthError),
    query={"code": "GitHub's code", "state": "the login's state"},
    summary="Finish a browser login: checks the state, then sets the session cookie",
)
def web_callback(call: Call) -> Response:
    c = get_container()
    q = call.query
    if not q.get("code") or not q.get("state"):
        raise UnauthenticatedError("the callback needs code and state", {"reason": "state"})
    session, _ = c.login.finish_web(
        q["state"], q["code"], cookie(call, BROWSER_COOKIE), f"{c.settings.public_url}/v1/auth/github/callback"
    )
    return Response(
        body="",
        status_code=302,
        headers={
            # The dashboard, under the base path of the public URL (API Gateway's address names its stage).
            "Location": urlsplit(c.settings.public_url).path.rstrip("/") + "/",
            "Set-Cookie": session_cookie(session, c.settings),
            "Content-Type": "text/plain",
        },
    )


@registry.route(
    bp,
    "/v1/auth/logout",
    "POST",
    tag="auth",
    status=204,
    auth=Auth(),
    summary="Log out: revokes the calling token, or ends the browser session",
)
def logout(call: Call) -> Response:
    c = get_container()
    header = call.header("authorization") or ""
    if header.lower().startswith("bearer "):
        c.auth.revoke_secret(header[7:].strip())
    session = cookie(call, SESSION_COOKIE)
    if session:
        c.login.end_session(session)
    return Response(
        body="",
        status_code=204,
        headers={
            "Set-Cookie": f"{SESSION_COOKIE}=; HttpOnly; SameSite=Lax; Path=/; Max-Age=0{_secure(c.settings)}",
            "Content-Type": "text/plain",
        },
    )


@registry.route(
    bp,
    "/v1/auth/local-login",
    "POST",
    tag="auth",
    request=f"{S}:LocalLoginIn",
    response=f"{S}:LoginOut",
    errors=(NotFoundError,),
    stages=("local",),
    summary="Local stage only: log in as a seeded user of the GitHub stand-in",
)
def local_login(call: Call) -> dict[str, Any]:
    return _login_answer(get_container().login.local_login(call.body.login))


@registry.route(
    bp,
    "/v1/auth/local-session",
    "POST",
    tag="auth",
    request=f"{S}:LocalLoginIn",
    response=f"{S}:SessionOut",
    errors=(NotFoundError,),
    stages=("local",),
    summary="Local stage only: open a dashboard session (the platform_session cookie) as a seeded user",
)
def local_session(call: Call) -> Response:
    c = get_container()
    session, account = c.login.local_session(call.body.login)
    return Response(
        body=json.dumps({"login": account.login}),
        status_code=200,
        headers={"Set-Cookie": session_cookie(session, c.settings), "Content-Type": "application/json"},
    )
