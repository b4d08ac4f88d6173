"""Logging in through GitHub: the device flow (the CLI), the web flow (the dashboard) and, in the
local stage only, a login as a seeded user of the GitHub stand-in. The GitHub user token is used for
identity and then dropped: it is stored nowhere."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import timedelta

from chalicelib.domain.clock import Clock
from chalicelib.domain.errors import NotFoundError, OAuthError, UnauthenticatedError
from chalicelib.domain.model import Account, ApiToken
from chalicelib.domain.ports import DeviceCodeGrant, GitHubOAuthPort, GitHubPort
from chalicelib.domain.services.auth import AuthService, hash_secret
from chalicelib.domain.stores import AccountStore, LoginWindowStore

STATE_WINDOW = timedelta(minutes=10)
SESSION_LIFETIME = timedelta(days=7)


@dataclass(frozen=True)
class LoginResult:
    secret: str
    token: ApiToken
    account: Account


class LoginService:
    def __init__(
        self,
        oauth: GitHubOAuthPort,
        github: GitHubPort,
        accounts: AccountStore,
        windows: LoginWindowStore,
        auth: AuthService,
        clock: Clock,
    ) -> None:
        self._oauth = oauth
        self._github = github
        self._accounts = accounts
        self._windows = windows
        self._auth = auth
        self._clock = clock

    # ------------------------------------------------------------------ device flow (CLI)

    def start_device(self) -> DeviceCodeGrant:
        grant = self._oauth.request_device_code()
        # Our device code is GitHub's: opaque to the CLI, and only its hash is kept.
        self._windows.put_device(
            hash_secret(grant.device_code),
            grant.device_code,
            grant.interval,
            self._clock.now() + timedelta(seconds=grant.expires_in),
        )
        return grant

    def poll_device(self, device_code: str) -> LoginResult:
        code_hash = hash_secret(device_code)
        verdict, login = self._windows.poll_device(code_hash, self._clock.now())
        if verdict == "expired":
            raise OAuthError("the device code has expired; start again", code="expired_token")
        if verdict == "slow_down" or login is None:
            # the record holds the interval as it is now (already 5 s longer after a poll too soon)
            interval = login.interval if login is not None else None
            raise OAuthError("polling too fast; wait longer between polls", {"interval": interval}, code="slow_down")
        poll = self._oauth.poll_device_code(login.github_device_code)
        user_token, error = poll.token, poll.error
        if error is not None or user_token is None:
            if error == "slow_down":
                # GitHub added 5 s to its interval and says which: the CLI must use it, and polls sooner
                # than it stop here instead of reaching GitHub and slowing the login down again.
                interval = max(poll.interval or login.interval + 5, login.interval)
                self._windows.slow_down_device(code_hash, interval)
                raise OAuthError(
                    "GitHub asks to poll less often; wait longer between polls",
                    {"interval": interval},
                    code="slow_down",
                )
            if error == "authorization_pending":
                raise OAuthError(
                    "waiting for the user to approve", {"interval": login.interval}, code="authorization_pending"
                )
            if error == "access_denied":
                self._windows.finish_device(code_hash)
                raise OAuthError("the user denied the login", code="access_denied")
            self._windows.finish_device(code_hash)
            raise OAuthError("the device code has expired; start again", code="expired_token")
        self._windows.finish_device(code_hash)
        return self._login(user_token)

    # ------------------------------------------------------------------ web flow (dashboard)

    def start_web(self, redirect_uri: str) -> tuple[str, str]:
        """Answer (GitHub's authorize URL, the browser-binding secret to set as a cookie)."""
        state = secrets.token_urlsafe(24)
        browser = secrets.token_urlsafe(24)
        self._windows.put_state(hash_secret(state), hash_secret(browser), self._clock.now() + STATE_WINDOW)
        return self._oauth.authorize_url(state, redirect_uri), browser

    def finish_web(self, state: str, code: str, browser: str | None, redirect_uri: str) -> tuple[str, Account]:
        """Check the state (single use, bound to this browser), then open a session; answer its cookie."""
        if not browser or not self._windows.consume_state(hash_secret(state), hash_secret(browser), self._clock.now()):
            raise UnauthenticatedError(
                "the login expired or did not start in this browser; start again", {"reason": "state"}
            )
        account = self._identify(self._oauth.exchange_code(code, redirect_uri))
        return self._open_session(account), account

    def end_session(self, cookie: str) -> None:
        self._windows.delete_session(hash_secret(cookie))

    # ------------------------------------------------------------------ local stage

    def local_login(self, login: str) -> LoginResult:
        user = self._github.get_user_by_login(login)
        if user is None:
            raise NotFoundError(f"no GitHub user {login!r} in the local GitHub stand-in", {"login": login})
        account = Account(uid=user.id, login=user.login, name=user.name, email=user.email)
        self._accounts.upsert(account, self._clock.now())
        secret, token = self._auth.mint_login_token(account)
        return LoginResult(secret, token, account)

    def local_session(self, login: str) -> tuple[str, Account]:
        """The dashboard's local login: a browser session (as the web flow opens) for a seeded user."""
        user = self._github.get_user_by_login(login)
        if user is None:
            raise NotFoundError(f"no GitHub user {login!r} in the local GitHub stand-in", {"login": login})
        account = Account(uid=user.id, login=user.login, name=user.name, email=user.email)
        self._accounts.upsert(account, self._clock.now())
        return self._open_session(account), account

    # ------------------------------------------------------------------ shared

    def _open_session(self, account: Account) -> str:
        cookie = secrets.token_urlsafe(32)
        self._windows.put_session(hash_secret(cookie), account.uid, account.login, self._clock.now() + SESSION_LIFETIME)
        return cookie

    def _identify(self, user_token: str) -> Account:
        user = self._github.get_user(user_token)
        account = Account(uid=user.id, login=user.login, name=user.name, email=user.email)
        self._accounts.upsert(account, self._clock.now())
        return account

    def _login(self, user_token: str) -> LoginResult:
        account = self._identify(user_token)
        secret, token = self._auth.mint_login_token(account)
        return LoginResult(secret, token, account)
