"""github.com's OAuth endpoints (outside ``/api/v3``): the device flow (``/login/device/code``, polling
``/login/oauth/access_token``, the ``/login/device`` page) and the web flow (``/login/oauth/authorize``,
the code exchanged at ``/login/oauth/access_token``), answering form-encoded unless JSON is accepted.
"""

from __future__ import annotations

import html
import json
import secrets
from collections.abc import Mapping
from datetime import timedelta
from http.cookies import SimpleCookie
from typing import Any
from urllib.parse import parse_qsl, quote, urlencode, urlsplit

from localcloud.standins import RawRequest, RawResponse
from localcloud.standins.github.api import _html
from localcloud.standins.github.common import (
    AUTH_CODE_TTL,
    DEVICE_CODE_TTL,
    DEVICE_ERRORS_URI,
    DEVICE_GRANT,
    FORM_TYPE,
    JSON_TYPE,
    OAUTH_ERRORS,
    OAUTH_ERRORS_URI,
    USER_CODE_ALPHABET,
)
from localcloud.standins.github.state import AuthCode, DeviceCode, User


class OAuthMixin:
    """Mixed into :class:`~localcloud.standins.github.server.GitHubStandIn` (its ``state``, ``lock``, ``clock``)."""

    # ------------------------------------------------ github.com: OAuth (device flow, web flow)

    def _handle_login(self, request: RawRequest, path: str, query: list[tuple[str, str]]) -> RawResponse:
        params = _oauth_params(request, query)
        if path == "/login/device/code" and request.method == "POST":
            return self._device_code(request, params)
        if path == "/login/oauth/access_token" and request.method == "POST":
            return self._access_token(request, params)
        if path == "/login/oauth/authorize" and request.method in ("GET", "POST"):
            return self._authorize(request, params)
        if path == "/login/device" and request.method in ("GET", "POST"):
            return self._device_page(request, params)
        return RawResponse(404, b"Not Found", {"Content-Type": "text/plain; charset=utf-8"})

    def _device_code(self, request: RawRequest, params: dict[str, str]) -> RawResponse:
        if params.get("client_id") != self.app.client_id:
            return RawResponse(404, b"Not Found", {"Content-Type": "text/plain; charset=utf-8"})
        now = self.clock.now()
        while True:
            raw = "".join(secrets.choice(USER_CODE_ALPHABET) for _ in range(8))
            user_code = f"{raw[:4]}-{raw[4:]}"
            if all(d.user_code != user_code for d in self.state.device_codes.values()):
                break
        device = DeviceCode(
            device_code=secrets.token_hex(20),
            user_code=user_code,
            client_id=params["client_id"],
            scope=params.get("scope", ""),
            expires_at=now + timedelta(seconds=DEVICE_CODE_TTL),
        )
        self.state.device_codes[device.device_code] = device
        body = {
            "device_code": device.device_code,
            "user_code": device.user_code,
            "verification_uri": f"{request.base}/login/device",
            "expires_in": DEVICE_CODE_TTL,
            "interval": device.interval,
        }
        return _oauth_answer(request, body)

    def _access_token(self, request: RawRequest, params: dict[str, str]) -> RawResponse:
        grant_type = params.get("grant_type") or "authorization_code"
        if grant_type == DEVICE_GRANT:
            return self._poll_device(request, params)
        if grant_type != "authorization_code":
            return _oauth_error(request, "unsupported_grant_type")
        app = self.app
        if params.get("client_id") != app.client_id or params.get("client_secret") != app.client_secret:
            return _oauth_error(request, "incorrect_client_credentials")
        code = self.state.auth_codes.pop(params.get("code", ""), None)  # single use, even when it fails
        if code is None or code.client_id != app.client_id or code.expires_at <= self.clock.now():
            return _oauth_error(request, "bad_verification_code")
        if params.get("redirect_uri") and params["redirect_uri"] != code.redirect_uri:
            return _oauth_error(request, "redirect_uri_mismatch")
        return _oauth_answer(request, {"access_token": self.token_for(code.login), "token_type": "bearer", "scope": ""})

    def _poll_device(self, request: RawRequest, params: dict[str, str]) -> RawResponse:
        if params.get("client_id") != self.app.client_id:
            return _oauth_error(request, "incorrect_client_credentials")
        device = self.state.device_codes.get(params.get("device_code", ""))
        if device is None or device.client_id != params["client_id"]:
            return _oauth_error(request, "incorrect_device_code")
        now = self.clock.now()
        if device.expires_at <= now:
            return _oauth_error(request, "expired_token")
        last, device.last_poll = device.last_poll, now
        if last is not None and (now - last).total_seconds() < device.interval:
            # GitHub's docs, "Authorizing OAuth apps", error codes for the device flow: "When you receive the
            # slow_down error, 5 extra seconds are added to the minimum interval ... The error response
            # includes the new interval that you must use."
            device.interval += 5
            return _oauth_error(request, "slow_down", interval=device.interval)
        if device.status == "denied":
            return _oauth_error(request, "access_denied")
        if device.status == "approved" and device.login is not None:
            del self.state.device_codes[device.device_code]  # a device code gives one token
            body = {"access_token": self.token_for(device.login), "token_type": "bearer", "scope": ""}
            return _oauth_answer(request, body)
        return _oauth_error(request, "authorization_pending")

    def _signed_in(self, request: RawRequest, params: dict[str, str]) -> User | None:
        login = params.get("login")
        if not login:
            cookie = SimpleCookie()
            try:
                cookie.load(request.headers.get("cookie", ""))
            except Exception:  # a malformed cookie header: signed out
                return None
            morsel = cookie.get("standin_login")
            login = morsel.value if morsel is not None else None
        return self.state.users.get(login.lower()) if login else None

    def _authorize(self, request: RawRequest, params: dict[str, str]) -> RawResponse:
        app = self.app
        if params.get("client_id") != app.client_id:
            return _html(404, "<h1>404</h1><p>This is not the web page you are looking for.</p>")
        redirect_uri = params.get("redirect_uri") or app.callback_url
        if not redirect_uri or urlsplit(redirect_uri).scheme not in ("http", "https"):
            return _html(400, "<h1>The redirect_uri is missing or not an http(s) URL.</h1>")
        user = self._signed_in(request, params)
        if user is None:
            rest = [(k, v) for k, v in params.items() if k != "login"]
            links = "".join(
                f'<li><a href="/login/oauth/authorize?{html.escape(urlencode([*rest, ("login", u.login)]))}">'
                f"{html.escape(u.login)}</a> {html.escape(u.name or '')}</li>"
                for u in sorted(self.state.users.values(), key=lambda u: u.id)
            )
            return _html(
                200,
                f"<h1>Sign in to authorize {html.escape(app.name)}</h1>"
                f"<p>GitHub stand-in: pick the user you are.</p><ul>{links}</ul>",
            )
        code = AuthCode(
            code=secrets.token_hex(10),
            client_id=app.client_id,
            login=user.login,
            redirect_uri=redirect_uri,
            expires_at=self.clock.now() + timedelta(seconds=AUTH_CODE_TTL),
        )
        self.state.auth_codes[code.code] = code
        answer = [("code", code.code)] + ([("state", params["state"])] if "state" in params else [])
        location = redirect_uri + ("&" if "?" in redirect_uri else "?") + urlencode(answer)
        cookie = f"standin_login={quote(user.login)}; Path=/; HttpOnly; SameSite=Lax"
        return RawResponse(302, b"", {"Location": location, "Set-Cookie": cookie, "Cache-Control": "no-store"})

    def _device_page(self, request: RawRequest, params: dict[str, str]) -> RawResponse:
        """github.com/login/device: enter the code shown by the CLI, then authorize (or cancel)."""
        message = ""
        if request.method == "POST":
            user = self._signed_in(request, params)
            try:
                device = self._device_by_user_code(params.get("user_code", ""))
            except KeyError:
                return _html(404, "<h1>Incorrect code</h1><p>Check the code and try again.</p>")
            if device.expires_at <= self.clock.now():
                return _html(410, "<h1>This code has expired</h1>")
            if params.get("action") == "deny":
                self.deny_device(device.user_code)
                return _html(200, "<h1>Authorization cancelled</h1>")
            if user is None:
                message = "<p>Pick a user.</p>"
            else:
                self.approve_device(device.user_code, user.login)
                return _html(
                    200, f"<h1>Congratulations, you're all set!</h1><p>Signed in as {html.escape(user.login)}.</p>"
                )
        options = "".join(
            f'<option value="{html.escape(u.login)}">{html.escape(u.login)}</option>'
            for u in sorted(self.state.users.values(), key=lambda u: u.id)
        )
        return _html(
            200,
            f"<h1>Device activation</h1>{message}"
            '<form method="post" action="/login/device">'
            '<label>Code <input name="user_code" placeholder="XXXX-XXXX"></label> '
            f'<label>User <select name="login">{options}</select></label> '
            '<button name="action" value="approve">Authorize</button> '
            '<button name="action" value="deny">Cancel</button></form>',
        )


def _oauth_params(request: RawRequest, query: list[tuple[str, str]]) -> dict[str, str]:
    """github.com's OAuth endpoints read the query string and a form or JSON body."""
    params = dict(query)
    if request.body.strip():
        if "json" in request.headers.get("content-type", ""):
            try:
                data = json.loads(request.body)
            except ValueError:
                data = None
            if isinstance(data, dict):
                params.update({str(k): str(v) for k, v in data.items() if v is not None})
        else:
            params.update(parse_qsl(request.body.decode("utf-8", "replace"), keep_blank_values=True))
    return params


def _oauth_answer(request: RawRequest, body: Mapping[str, Any], status: int = 200) -> RawResponse:
    """JSON when the client accepts it, else form-encoded: github.com's default."""
    if "application/json" in request.headers.get("accept", ""):
        return RawResponse(status, json.dumps(body).encode(), {"Content-Type": JSON_TYPE, "Cache-Control": "no-store"})
    form = urlencode([(k, str(v)) for k, v in body.items()])
    return RawResponse(status, form.encode(), {"Content-Type": FORM_TYPE, "Cache-Control": "no-store"})


def _oauth_error(request: RawRequest, error: str, **extra: Any) -> RawResponse:
    uri = DEVICE_ERRORS_URI if error not in ("bad_verification_code", "redirect_uri_mismatch") else OAUTH_ERRORS_URI
    body = {"error": error, "error_description": OAUTH_ERRORS[error], "error_uri": uri, **extra}
    return _oauth_answer(request, body)
