"""REST handlers for users, organizations, teams and memberships (``/user``, ``/users``, ``/orgs``,
``/teams``, ``/organizations/{id}/team``), GitHub's pagination, and who sees what (members, owners,
secret teams, installations with the ``members`` permission).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any
from urllib.parse import quote, urlencode

from localcloud.standins.github.api import ApiError, ApiRequest, ApiResponse, _int_arg, _validation_failed, not_found
from localcloud.standins.github.common import (
    DEFAULT_PER_PAGE,
    MAX_PER_PAGE,
    NOT_FOR_INTEGRATIONS,
    RATE_LIMIT_ANONYMOUS,
    RATE_LIMIT_AUTHENTICATED,
)
from localcloud.standins.github.state import Org, OrgMembership, Team, TeamMembership, User


class OrgsMixin:
    """Mixed into :class:`~localcloud.standins.github.server.GitHubStandIn` (its ``state``, ``lock``, ``clock``)."""

    # ------------------------------------------------ helpers for handlers

    def paginate(self, req: ApiRequest, items: list[Any]) -> ApiResponse:
        """GitHub's pagination: ``per_page`` (default 30, max 100), ``page`` (from 1), ``Link`` header."""
        per_page = _int_arg(req.arg("per_page"), DEFAULT_PER_PAGE)
        per_page = min(max(per_page, 1), MAX_PER_PAGE)
        page = max(_int_arg(req.arg("page"), 1), 1)
        last = max((len(items) + per_page - 1) // per_page, 1)
        body = items[(page - 1) * per_page : page * per_page]

        def link(p: int) -> str:
            query = [(k, v) for k, v in req.query if k != "page"] + [("page", str(p))]
            return f"<{req.api}{req.path}?{urlencode(query)}>"

        links = []
        if page > 1:
            links += [f'{link(min(page - 1, last))}; rel="prev"']
        if page < last:
            links += [f'{link(page + 1)}; rel="next"', f'{link(last)}; rel="last"']
        if page > 1:
            links += [f'{link(1)}; rel="first"']
        return ApiResponse(200, body, {"Link": ", ".join(links)} if links else {})

    def _org(self, req: ApiRequest) -> Org:
        org = self.state.orgs.get(req.params["org"].lower())
        if org is None:
            raise not_found()
        return org

    def _user(self, login: str) -> User:
        user = self.state.users.get(login.lower())
        if user is None:
            raise not_found()
        return user

    def is_active_member(self, org: Org, login: str | None) -> bool:
        m = org.members.get(login.lower()) if login else None
        return m is not None and m.state == "active"

    def is_owner(self, org: Org, login: str | None) -> bool:
        m = org.members.get(login.lower()) if login else None
        return m is not None and m.state == "active" and m.role == "admin"

    def can_see_team(self, team: Team, login: str | None) -> bool:
        org = self.state.org(team.org)
        if not self.is_active_member(org, login):
            return False
        if team.privacy != "secret":
            return True
        return self.is_owner(org, login) or (login or "").lower() in team.members

    def _insider(self, req: ApiRequest, org: Org) -> bool:
        """The caller sees the organization as a member: an active member, or an installation on it
        with the ``members`` permission (which reads as an owner would)."""
        if req.installation is not None:
            return req.installation.account.lower() == org.login.lower() and "members" in req.permissions
        return self.is_active_member(org, req.caller.login if req.caller else None)

    def _sees_team(self, req: ApiRequest, team: Team) -> bool:
        if req.installation is not None:
            return self._insider(req, self.state.org(team.org))
        return self.can_see_team(team, req.caller.login if req.caller else None)

    def _integration_may_write_members(self, req: ApiRequest, org: Org) -> None:
        assert req.installation is not None
        if not self._insider(req, org):
            raise not_found()
        if req.permissions.get("members") not in ("write", "admin"):
            raise ApiError(403, NOT_FOR_INTEGRATIONS)

    def _team(self, req: ApiRequest) -> Team:
        team: Team | None
        if "slug" in req.params:
            team = self._org(req).teams.get(req.params["slug"].lower())
        else:
            team = self.state.team_by_id(int(req.params["team_id"]))
            if team is not None and "org_id" in req.params and self.state.org(team.org).id != int(req.params["org_id"]):
                team = None
        if team is None or not self._sees_team(req, team):
            raise not_found()
        return team

    def _active_users(self, logins: Iterable[str]) -> list[User]:
        return sorted((self.state.user(login) for login in logins), key=lambda u: u.id)

    # ------------------------------------------------ handlers: users

    def get_rate_limit(self, req: ApiRequest) -> ApiResponse:
        limit = RATE_LIMIT_AUTHENTICATED if req.caller else RATE_LIMIT_ANONYMOUS
        if req.installation is not None:
            identity = f"installation:{req.installation.id}"
        else:
            identity = req.caller.login.lower() if req.caller else "anonymous"
        used = self.state.rate_used.get(identity, 0)
        core = {"limit": limit, "used": used, "remaining": max(limit - used, 0), "reset": self.rate_window_reset}
        return ApiResponse(200, {"resources": {"core": core}, "rate": core})

    def get_authenticated_user(self, req: ApiRequest) -> ApiResponse:
        assert req.caller is not None
        return ApiResponse(200, self.user_full(req.caller, req.api))

    def get_user(self, req: ApiRequest) -> ApiResponse:
        return ApiResponse(200, self.user_full(self._user(req.params["login"]), req.api))

    def list_my_orgs(self, req: ApiRequest) -> ApiResponse:
        assert req.caller is not None
        orgs = [o for o in self.state.orgs.values() if self.is_active_member(o, req.caller.login)]
        return self.paginate(req, [self.org_simple(o, req.api) for o in sorted(orgs, key=lambda o: o.id)])

    def list_user_public_orgs(self, req: ApiRequest) -> ApiResponse:
        user = self._user(req.params["login"])
        orgs = [
            o
            for o in self.state.orgs.values()
            if self.is_active_member(o, user.login) and o.members[user.login.lower()].public
        ]
        return self.paginate(req, [self.org_simple(o, req.api) for o in sorted(orgs, key=lambda o: o.id)])

    def list_my_teams(self, req: ApiRequest) -> ApiResponse:
        assert req.caller is not None
        login = req.caller.login.lower()
        teams = [
            t
            for o in self.state.orgs.values()
            if self.is_active_member(o, login)
            for t in o.teams.values()
            if login in t.members and t.members[login].state == "active"
        ]
        return self.paginate(req, [self.team_full(t, req.api) for t in sorted(teams, key=lambda t: t.id)])

    def list_my_org_memberships(self, req: ApiRequest) -> ApiResponse:
        assert req.caller is not None
        state = req.arg("state")
        if state not in (None, "active", "pending"):
            raise _validation_failed("state", state)
        login = req.caller.login.lower()
        orgs = [
            o
            for o in sorted(self.state.orgs.values(), key=lambda o: o.id)
            if login in o.members and state in (None, o.members[login].state)
        ]
        return self.paginate(req, [self.org_membership_body(o, login, req.api) for o in orgs])

    def get_my_org_membership(self, req: ApiRequest) -> ApiResponse:
        assert req.caller is not None
        org = self._org(req)
        if req.caller.login.lower() not in org.members:
            raise not_found()
        return ApiResponse(200, self.org_membership_body(org, req.caller.login, req.api))

    # ------------------------------------------------ handlers: organizations

    def get_org(self, req: ApiRequest) -> ApiResponse:
        return ApiResponse(200, self.org_full(self._org(req), req.api))

    def list_org_members(self, req: ApiRequest) -> ApiResponse:
        org = self._org(req)
        role = _role_filter(req, ("admin", "member"))
        insider = self._insider(req, org)  # outsiders see public members only
        logins = [
            login
            for login, m in org.members.items()
            if m.state == "active" and (insider or m.public) and role in ("all", m.role)
        ]
        return self.paginate(req, [self.user_simple(u, req.api) for u in self._active_users(logins)])

    def check_org_member(self, req: ApiRequest) -> ApiResponse:
        org = self._org(req)
        if not self._insider(req, org):
            location = f"{req.api}/orgs/{org.login}/public_members/{quote(req.params['login'])}"
            return ApiResponse(302, None, {"Location": location})
        if self.is_active_member(org, req.params["login"]):
            return ApiResponse(204)
        raise not_found()

    def list_org_public_members(self, req: ApiRequest) -> ApiResponse:
        org = self._org(req)
        logins = [login for login, m in org.members.items() if m.state == "active" and m.public]
        return self.paginate(req, [self.user_simple(u, req.api) for u in self._active_users(logins)])

    def check_public_member(self, req: ApiRequest) -> ApiResponse:
        org = self._org(req)
        m = org.members.get(req.params["login"].lower())
        if m is not None and m.state == "active" and m.public:
            return ApiResponse(204)
        raise not_found()

    def get_org_membership(self, req: ApiRequest) -> ApiResponse:
        assert req.caller is not None
        org = self._org(req)
        login = req.params["login"]
        caller_is_subject = req.caller.login.lower() == login.lower()
        if not (caller_is_subject or self._insider(req, org)):
            raise not_found()
        if login.lower() not in org.members:
            raise not_found()
        return ApiResponse(200, self.org_membership_body(org, login, req.api))

    def _require_owner(self, req: ApiRequest, org: Org) -> None:
        assert req.caller is not None
        if req.installation is not None:
            self._integration_may_write_members(req, org)
            return
        if not self.is_active_member(org, req.caller.login):
            raise not_found()
        if not self.is_owner(org, req.caller.login):
            raise ApiError(403, "You must be an admin to change organization memberships.")

    def put_org_membership(self, req: ApiRequest) -> ApiResponse:
        """Sets a member's role; someone outside the organization is invited (``pending``)."""
        org = self._org(req)
        self._require_owner(req, org)
        user = self._user(req.params["login"])
        role = _role(req, ("admin", "member"))
        membership = org.members.get(user.login.lower())
        if membership is None:
            org.members[user.login.lower()] = OrgMembership(role=role, state="pending")
            assert req.caller is not None
            self._emit_organization("member_invited", org, user, req.caller, role, "pending")
        else:
            membership.role = role
        return ApiResponse(200, self.org_membership_body(org, user.login, req.api))

    def delete_org_membership(self, req: ApiRequest) -> ApiResponse:
        """Removes the user from the organization and its teams (or cancels the invitation)."""
        org = self._org(req)
        self._require_owner(req, org)
        user = self._user(req.params["login"])
        if user.login.lower() not in org.members:
            raise not_found()
        assert req.caller is not None
        self._remove_org_member(org, user.login, req.caller)
        return ApiResponse(204)

    # ------------------------------------------------ handlers: teams

    def list_teams(self, req: ApiRequest) -> ApiResponse:
        assert req.caller is not None
        org = self._org(req)
        if not self._insider(req, org):
            raise not_found()
        teams = [t for t in sorted(org.teams.values(), key=lambda t: t.id) if self._sees_team(req, t)]
        return self.paginate(req, [self.team_simple(t, req.api) for t in teams])

    def get_team(self, req: ApiRequest) -> ApiResponse:
        return ApiResponse(200, self.team_full(self._team(req), req.api))

    def list_team_members(self, req: ApiRequest) -> ApiResponse:
        team = self._team(req)
        role = _role_filter(req, ("member", "maintainer"))
        logins = [k for k, m in team.members.items() if m.state == "active" and role in ("all", m.role)]
        return self.paginate(req, [self.user_simple(u, req.api) for u in self._active_users(logins)])

    def check_team_member(self, req: ApiRequest) -> ApiResponse:
        team = self._team(req)
        m = team.members.get(req.params["login"].lower())
        if m is not None and m.state == "active":
            return ApiResponse(204)
        raise not_found()

    def get_team_membership(self, req: ApiRequest) -> ApiResponse:
        team = self._team(req)
        login = req.params["login"]
        if login.lower() not in team.members:
            raise not_found()
        return ApiResponse(200, self.team_membership_body(team, login, req.api))

    def _require_team_admin(self, req: ApiRequest, team: Team) -> None:
        assert req.caller is not None
        if req.installation is not None:
            self._integration_may_write_members(req, self.state.org(team.org))
            return
        login = req.caller.login.lower()
        m = team.members.get(login)
        maintainer = m is not None and m.state == "active" and m.role == "maintainer"
        if not (maintainer or self.is_owner(self.state.org(team.org), login)):
            raise ApiError(403, "You must be an organization owner or team maintainer to change team memberships.")

    def _add_to_team(self, team: Team, user: User, role: str | None, sender: User) -> None:
        org = self.state.org(team.org)
        login = user.login.lower()
        if login not in org.members:  # an invitation to the organization
            org.members[login] = OrgMembership(role="member", state="pending")
            self._emit_organization("member_invited", org, user, sender, "member", "pending")
        state = "active" if org.members[login].state == "active" else "pending"
        existing = team.members.get(login)
        if existing is None:
            team.members[login] = TeamMembership(role=role or "member", state=state)
            if state == "active":
                self._emit_membership("added", org, team, user, sender)
        elif role is not None:
            existing.role = role

    def _team_write(self, req: ApiRequest) -> tuple[Team, User]:
        """The team and the user a team membership write names, once the caller may write it."""
        team = self._team(req)
        self._require_team_admin(req, team)
        return team, self._user(req.params["login"])

    def put_team_membership(self, req: ApiRequest) -> ApiResponse:
        team, user = self._team_write(req)
        role = _role(req, ("member", "maintainer"))
        assert req.caller is not None
        self._add_to_team(team, user, role, req.caller)
        return ApiResponse(200, self.team_membership_body(team, user.login, req.api))

    def legacy_add_team_member(self, req: ApiRequest) -> ApiResponse:
        team, user = self._team_write(req)
        if not self.is_active_member(self.state.org(team.org), user.login):
            raise not_found()  # the legacy endpoint does not invite
        assert req.caller is not None
        self._add_to_team(team, user, None, req.caller)
        return ApiResponse(204)

    def delete_team_membership(self, req: ApiRequest) -> ApiResponse:
        team, user = self._team_write(req)
        assert req.caller is not None
        self._remove_team_member(self.state.org(team.org), team, user.login, req.caller)
        return ApiResponse(204)


def _role(req: ApiRequest, allowed: tuple[str, ...]) -> str:
    """The ``role`` a membership write asks for (``member`` when it names none); another value, or a body that
    is not a JSON object, answers 422 ``Validation Failed``."""
    body = req.json()
    role = body.get("role", "member") if isinstance(body, dict) else None
    if role not in allowed:
        raise _validation_failed("role", role)
    return str(role)


def _role_filter(req: ApiRequest, roles: tuple[str, ...]) -> str:
    """A member list's ``?role=`` (``all`` when absent); another value answers 422 ``Validation Failed``."""
    role = req.arg("role", "all")
    if role not in ("all", *roles):
        raise _validation_failed("role", role)
    return str(role)
