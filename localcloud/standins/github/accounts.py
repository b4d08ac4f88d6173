"""The stand-in's Python side for tests and the local cloud: users and their tokens, organization and team
memberships, organization renames, the App's installations and device codes. Each change sends the webhook
GitHub sends for it (``organization``, ``membership``, ``installation``).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

from localcloud.standins import github_webhooks as hooks
from localcloud.standins.github.common import _iso, default_token
from localcloud.standins.github.state import DeviceCode, Installation, Org, OrgMembership, Team, TeamMembership, User


class AccountsMixin:
    """Mixed into :class:`~localcloud.standins.github.server.GitHubStandIn` (its ``state``, ``lock``, ``clock``)."""

    # ------------------------------------------------ state access for tests and the local cloud

    def token_for(self, login: str) -> str:
        with self.lock:
            user = self.state.user(login)
            token = next((t for t, who in self.state.tokens.items() if who == user.login.lower()), None)
            if token is None:  # revoked: signing in again gives a token again
                token = default_token(user.login)
                self.state.tokens[token] = user.login.lower()
            return token

    def add_user(self, login: str, user_id: int | None = None, name: str | None = None) -> str:
        """Creates a user (in no organization) and returns its token."""
        with self.lock:
            if login.lower() in self.state.users:
                raise ValueError(f"user {login!r} exists")
            uid = user_id if user_id is not None else max((u.id for u in self.state.users.values()), default=0) + 1
            self.state.users[login.lower()] = User(id=uid, login=login, name=name)
            token = default_token(login)
            self.state.tokens[token] = login.lower()
            return token

    def revoke_token(self, login: str) -> None:
        with self.lock:
            for token in [t for t, who in self.state.tokens.items() if who == login.lower()]:
                del self.state.tokens[token]

    def add_org_member(self, org: str, login: str, role: str = "member", *, actor: str | None = None) -> None:
        """Adds an active organization member (webhook ``organization`` ``member_added`` if they were not one)."""
        with self.lock:
            user = self.state.user(login)
            o = self.state.org(org)
            before = o.members.get(login.lower())
            o.members[login.lower()] = OrgMembership(role=role)
            if before is None or before.state != "active":
                self._emit_organization("member_added", o, user, self._sender(o, actor), role, "active")

    def remove_org_member(self, org: str, login: str, *, actor: str | None = None) -> None:
        """Removes the user from the organization and from all its teams, as GitHub does
        (webhook ``organization`` ``member_removed`` for an active member)."""
        with self.lock:
            self._remove_org_member(self.state.org(org), login, self._sender(self.state.org(org), actor))

    def _remove_org_member(self, o: Org, login: str, sender: User) -> None:
        membership = o.members.pop(login.lower(), None)
        for team in o.teams.values():
            team.members.pop(login.lower(), None)
        if membership is not None and membership.state == "active":
            user = self.state.user(login)
            self._emit_organization("member_removed", o, user, sender, membership.role, "active")

    def add_team_member(
        self, org: str, team: str, login: str, role: str = "member", *, actor: str | None = None
    ) -> None:
        """Adds an active team member (and an active org member if they were not one); webhooks
        ``organization`` ``member_added`` (if new to the organization) and ``membership`` ``added``."""
        with self.lock:
            user = self.state.user(login)
            t = self.state.team(org, team)
            o = self.state.org(org)
            sender = self._sender(o, actor)
            membership = o.members.get(login.lower())
            if membership is None:
                o.members[login.lower()] = OrgMembership(role="member")
            else:
                membership.state = "active"
            if membership is None or membership.state != "active":
                self._emit_organization("member_added", o, user, sender, o.members[login.lower()].role, "active")
            before = t.members.get(login.lower())
            t.members[login.lower()] = TeamMembership(role=role)
            if before is None or before.state != "active":
                self._emit_membership("added", o, t, user, sender)

    def remove_team_member(self, org: str, team: str, login: str, *, actor: str | None = None) -> None:
        """Removes the user from the team (webhook ``membership`` ``removed`` if they were an active member)."""
        with self.lock:
            o = self.state.org(org)
            self._remove_team_member(o, self.state.team(org, team), login, self._sender(o, actor))

    def _remove_team_member(self, o: Org, t: Team, login: str, sender: User) -> None:
        before = t.members.pop(login.lower(), None)
        if before is not None and before.state == "active":
            self._emit_membership("removed", o, t, self.state.user(login), sender)

    def accept_invitation(self, org: str, login: str) -> None:
        """The invited user accepts: pending org and team memberships become active."""
        with self.lock:
            o = self.state.org(org)
            user = self.state.user(login)
            membership = o.members.get(login.lower())
            if membership is None or membership.state == "active":
                return
            membership.state = "active"
            self._emit_organization("member_added", o, user, user, membership.role, "active")
            for team in o.teams.values():
                if login.lower() in team.members and team.members[login.lower()].state != "active":
                    team.members[login.lower()].state = "active"
                    self._emit_membership("added", o, team, user, user)

    def team_members(self, org: str, team: str) -> dict[str, str]:
        """``{login: role}`` of the team's active members."""
        with self.lock:
            t = self.state.team(org, team)
            return {self.state.user(k).login: m.role for k, m in t.members.items() if m.state == "active"}

    def requests_log(self) -> list[dict[str, Any]]:
        with self.lock:
            return [dict(vars(r)) for r in self.state.requests]

    def clear_requests(self) -> None:
        with self.lock:
            self.state.requests.clear()

    # ------------------------------------------------ the app: installations, device codes

    def rename_org(self, login: str, new_login: str, *, actor: str | None = None) -> dict[str, Any]:
        """Renames an organization, as GitHub does (docs: "Renaming an organization"): the id stays; its
        teams, installation and repositories follow, the repositories' old names answer 301 (as after a
        repository rename) while the old login answers 404; webhook ``organization`` ``renamed`` with
        ``changes.login.from``. Returns the organization's REST shape."""
        with self.lock:
            org = self.state.org(login)
            if not re.fullmatch(r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,37}[A-Za-z0-9])?", new_login):
                raise ValueError(f"not an organization login: {new_login!r}")
            if new_login.lower() != org.login.lower() and (
                new_login.lower() in self.state.orgs or new_login.lower() in self.state.users
            ):
                raise ValueError(f"the login {new_login} is taken")
            old, sender = org.login, self._sender(org, actor)
            repos = self._account_repos(old)
            paths = {}
            for repo in repos:
                self.bare(repo)  # the git data exists before it moves
                paths[repo.id] = self.repo_path(repo)
            del self.state.orgs[old.lower()]
            org.login = new_login
            self.state.orgs[new_login.lower()] = org
            for team in org.teams.values():
                team.org = new_login
            for installation in self.state.installations.values():
                if installation.account.lower() == old.lower():
                    installation.account = new_login
            if self.state.app is not None and (self.state.app.owner or "").lower() == old.lower():
                self.state.app.owner = new_login
            for repo in repos:
                old_full = repo.full_name
                repo.owner = new_login
                self._move(paths[repo.id], self.repo_path(repo))
                self.state.moved[old_full.lower()] = repo.id
                self.state.moved.pop(repo.full_name.lower(), None)
            installation = self._subscribed(org, "organization")
            if installation is not None:
                payload = hooks.organization_renamed_payload(self, org, old, sender, installation)
                self._emit("organization", "renamed", payload, installation)
            return self.org_simple(org, self.api_url)

    def installation_id(self, org: str) -> int | None:
        with self.lock:
            installation = self.state.installation_for(org)
            return installation.id if installation else None

    def install(
        self,
        org: str,
        *,
        permissions: Mapping[str, str] | None = None,
        events: Iterable[str] | None = None,
        actor: str | None = None,
    ) -> int:
        """Installs the app on an organization (webhook ``installation`` ``created``); returns the id."""
        with self.lock:
            o = self.state.org(org)
            if self.state.installation_for(o.login) is not None:
                raise ValueError(f"the app is already installed on {o.login}")
            installation = Installation(
                id=self._next_installation_id,
                account=o.login,
                permissions=dict(permissions if permissions is not None else self.app.permissions),
                events=list(events if events is not None else self.app.events),
                created_at=_iso(self.clock.now()),
            )
            self.state.installations[installation.id] = installation
            self._next_installation_id += 1  # GitHub never gives an id twice
            self._emit_installation("created", installation, self._sender(o, actor))
            return installation.id

    def uninstall(self, installation_id: int, *, actor: str | None = None) -> None:
        """Removes an installation and revokes its tokens (webhook ``installation`` ``deleted``)."""
        with self.lock:
            installation = self.state.installations.pop(installation_id, None)
            if installation is None:
                raise KeyError(f"no installation {installation_id}")
            for token in [
                t for t, it in self.state.installation_tokens.items() if it.installation_id == installation_id
            ]:
                del self.state.installation_tokens[token]
            self._emit_installation("deleted", installation, self._sender(self.state.org(installation.account), actor))

    def suspend(self, installation_id: int, *, actor: str | None = None) -> None:
        """Suspends an installation: no new tokens, existing ones stop working (``installation`` ``suspend``)."""
        with self.lock:
            installation = self._installation(installation_id)
            installation.suspended_at = _iso(self.clock.now())
            self._emit_installation("suspend", installation, self._sender(self.state.org(installation.account), actor))

    def unsuspend(self, installation_id: int, *, actor: str | None = None) -> None:
        with self.lock:
            installation = self._installation(installation_id)
            installation.suspended_at = None
            sender = self._sender(self.state.org(installation.account), actor)
            self._emit_installation("unsuspend", installation, sender)

    def _installation(self, installation_id: int) -> Installation:
        try:
            return self.state.installations[installation_id]
        except KeyError:
            raise KeyError(f"no installation {installation_id}") from None

    def approve_device(self, user_code: str, login: str) -> None:
        """The user enters the code at /login/device and authorizes the app."""
        with self.lock:
            device = self._device_by_user_code(user_code)
            user = self.state.user(login)
            device.status, device.login = "approved", user.login

    def deny_device(self, user_code: str) -> None:
        """The user enters the code and cancels."""
        with self.lock:
            device = self._device_by_user_code(user_code)
            device.status, device.login = "denied", None

    def _device_by_user_code(self, user_code: str) -> DeviceCode:
        wanted = user_code.strip().upper().replace("-", "")
        for device in self.state.device_codes.values():
            if device.user_code.replace("-", "") == wanted:
                return device
        raise KeyError(f"no device code with user code {user_code!r}")
