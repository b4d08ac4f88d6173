"""An in-memory GitHub: organizations, teams and users, with the ``GitHubPort`` contract."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from chalicelib.domain.errors import NotFoundError, UnauthenticatedError
from chalicelib.domain.ports import GitHubUser, TeamMember, TeamRef, TeamRole


@dataclass
class _Org:
    members: dict[str, Literal["admin", "member"]] = field(default_factory=dict)
    teams: dict[str, dict[str, TeamRole]] = field(default_factory=dict)


class InMemoryGitHub:
    def __init__(self) -> None:
        self.users: dict[str, GitHubUser] = {}
        self.tokens: dict[str, str] = {}  # user token -> login
        self.orgs: dict[str, _Org] = {}

    # seeding
    def add_user(self, login: str, token: str | None = None) -> GitHubUser:
        user = GitHubUser(id=len(self.users) + 1, login=login)
        self.users[login] = user
        if token:
            self.tokens[token] = login
        return user

    def add_org_member(self, org: str, login: str, role: Literal["admin", "member"] = "member") -> None:
        self.orgs.setdefault(org, _Org()).members[login] = role

    def add_team_member(self, org: str, team: str, login: str, role: TeamRole = "member") -> None:
        o = self.orgs.setdefault(org, _Org())
        o.members.setdefault(login, "member")
        o.teams.setdefault(team, {})[login] = role

    # the port
    def get_user(self, user_token: str) -> GitHubUser:
        login = self.tokens.get(user_token)
        if login is None:
            raise UnauthenticatedError("GitHub did not accept the user token")
        return self.users[login]

    def org_role(self, org: str, login: str) -> Literal["admin", "member"] | None:
        o = self.orgs.get(org)
        return None if o is None else o.members.get(login)

    def get_user_by_login(self, login: str) -> GitHubUser | None:
        return self.users.get(login)

    def org_owners(self, org: str) -> list[GitHubUser]:
        o = self.orgs.get(org)
        if o is None:
            raise NotFoundError(f"the organization {org!r} does not exist", {"github_org": org})
        owners = sorted(login for login, role in o.members.items() if role == "admin")
        return [self.users.get(login) or GitHubUser(id=0, login=login) for login in owners]

    def team_exists(self, org: str, team_slug: str) -> bool:
        o = self.orgs.get(org)
        return o is not None and team_slug in o.teams

    def get_team(self, org: str, team_slug: str) -> TeamRef | None:
        if not self.team_exists(org, team_slug):
            return None
        org_id = 1000 + sorted(self.orgs).index(org)
        team_id = 2000 + sorted(self.orgs[org].teams).index(team_slug)
        return TeamRef(org=org, org_id=org_id, slug=team_slug, id=team_id, name=team_slug)

    def team_members(self, org: str, team_slug: str) -> list[TeamMember]:
        if not self.team_exists(org, team_slug):
            raise NotFoundError(f"team {org}/{team_slug} does not exist", {"team": f"{org}/{team_slug}"})
        return [
            TeamMember(login=login, id=self.users[login].id if login in self.users else 0, role=role)
            for login, role in sorted(self.orgs[org].teams[team_slug].items())
        ]
