"""PyGithub's clients for the platform's GitHub App, built in one place with the same settings (API
address, timeout, retries, no client-side throttling): the App itself (its JWT: installations, its
webhook deliveries, installation tokens), one client per installation (cached; PyGithub refreshes its
token), and clients as a user or anonymous. ``api_url`` points at GitHub, or at the local cloud's
GitHub stand-in. PyGithub is imported on first use (cold starts)."""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from github import Github, GithubIntegration

GITHUB_API = "https://api.github.com"


class GitHubClients:
    def __init__(
        self, app_id: str, private_key: str, api_url: str = GITHUB_API, timeout: int = 10, retry: int = 2
    ) -> None:
        self._app_id = app_id
        self._private_key = private_key
        self._api_url = api_url.rstrip("/")
        self._timeout = timeout
        self._retry = retry
        self._integration: GithubIntegration | None = None
        self._installations: dict[int, Github] = {}
        self._lock = threading.Lock()

    def _kwargs(self) -> dict[str, Any]:
        kwargs: dict[str, Any] = {
            "timeout": self._timeout,
            "retry": self._retry,
            "seconds_between_requests": None,
            "seconds_between_writes": None,
        }
        if self._api_url != GITHUB_API:
            kwargs["base_url"] = self._api_url
        return kwargs

    def _app_auth(self) -> Any:
        from github import Auth

        return Auth.AppAuth(int(self._app_id), self._private_key)

    def integration(self) -> GithubIntegration:
        """The App, authenticated by its JWT (a fresh one for each request)."""
        from github import GithubIntegration

        with self._lock:
            if self._integration is None:
                self._integration = GithubIntegration(auth=self._app_auth(), **self._kwargs())
            return self._integration

    def installation(self, installation_id: int) -> Github:
        """A client as the App's installation (cached per installation; its token refreshes)."""
        from github import Github

        with self._lock:
            if installation_id not in self._installations:
                auth = self._app_auth().get_installation_auth(installation_id)
                self._installations[installation_id] = Github(auth=auth, **self._kwargs())
            return self._installations[installation_id]

    def user(self, token: str | None = None) -> Github:
        """A client as the user whose token this is, or anonymous (public data) without one."""
        from github import Auth, Github

        return Github(auth=Auth.Token(token) if token else None, **self._kwargs())
