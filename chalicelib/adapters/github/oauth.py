"""GitHub's OAuth endpoints for the App's users: the device flow and the web flow (plain HTTPS form
posts answered as JSON; PyGithub does not cover them)."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

import requests

from chalicelib.domain.errors import DependencyUnavailableError, OAuthError
from chalicelib.domain.ports import DeviceCodeGrant, DevicePoll

GITHUB_WEB = "https://github.com"


class GitHubOAuth:
    def __init__(self, client_id: str, client_secret: str, web_url: str = GITHUB_WEB, timeout: float = 10) -> None:
        self._client_id = client_id
        self._client_secret = client_secret
        self._web = web_url.rstrip("/")
        self._timeout = timeout

    def _post(self, path: str, data: dict[str, str]) -> dict[str, Any]:
        try:
            r = requests.post(
                f"{self._web}{path}",
                data=data,
                headers={"Accept": "application/json"},
                timeout=self._timeout,
                allow_redirects=False,
            )
        except requests.RequestException as e:
            raise DependencyUnavailableError("GitHub could not be reached", {"error": type(e).__name__}) from e
        if r.status_code >= 500:
            raise DependencyUnavailableError("GitHub answered with an error", {"status": r.status_code})
        try:
            body: dict[str, Any] = r.json()
        except ValueError as e:
            raise DependencyUnavailableError("GitHub's answer was not JSON", {"status": r.status_code}) from e
        return body

    def request_device_code(self) -> DeviceCodeGrant:
        body = self._post("/login/device/code", {"client_id": self._client_id})
        if "device_code" not in body:
            raise DependencyUnavailableError("GitHub refused the device flow", {"error": body.get("error")})
        return DeviceCodeGrant(
            device_code=body["device_code"],
            user_code=body["user_code"],
            verification_uri=body["verification_uri"],
            interval=int(body.get("interval", 5)),
            expires_in=int(body.get("expires_in", 900)),
        )

    def poll_device_code(self, device_code: str) -> DevicePoll:
        body = self._post(
            "/login/oauth/access_token",
            {
                "client_id": self._client_id,
                "device_code": device_code,
                "grant_type": "urn:ietf:params:oauth:grant-type:device_code",
            },
        )
        if body.get("access_token"):
            return DevicePoll(token=str(body["access_token"]))
        # GitHub's docs ("Authorizing OAuth apps", error codes for the device flow): on slow_down "5 extra
        # seconds are added to the minimum interval ... The error response includes the new interval".
        interval = body.get("interval")
        return DevicePoll(
            error=str(body.get("error", "unknown_error")),
            interval=int(interval) if isinstance(interval, int | str) and str(interval).isdigit() else None,
        )

    def authorize_url(self, state: str, redirect_uri: str) -> str:
        query = urlencode({"client_id": self._client_id, "redirect_uri": redirect_uri, "state": state})
        return f"{self._web}/login/oauth/authorize?{query}"

    def exchange_code(self, code: str, redirect_uri: str) -> str:
        body = self._post(
            "/login/oauth/access_token",
            {
                "client_id": self._client_id,
                "client_secret": self._client_secret,
                "code": code,
                "redirect_uri": redirect_uri,
            },
        )
        if not body.get("access_token"):
            raise OAuthError(
                "GitHub did not accept the login code; start again",
                {"github_error": body.get("error")},
                code="bad_verification_code",
            )
        return str(body["access_token"])
