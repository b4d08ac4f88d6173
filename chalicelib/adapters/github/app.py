"""The ``GitHubPort`` over PyGithub, as the platform's GitHub App: app JWT -> the organization's
installation -> installation tokens (PyGithub refreshes them). User tokens are used only to learn who
the user is. Clients come from ``GitHubClients`` (clients.py), shared with the repositories' adapter."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

from chalicelib.domain.errors import DependencyUnavailableError, NotFoundError, UnauthenticatedError
from chalicelib.domain.ports import GitHubUser, TeamMember, TeamRef

if TYPE_CHECKING:
    from github import Github

    from chalicelib.adapters.github.clients import GitHubClients


class PyGithubAdapter:
    def __init__(self, clients: GitHubClients) -> None:
        self._clients = clients
        self._installation_of: dict[str, int] = {}  # organization -> the App's installation on it

    # ------------------------------------------------------------------ clients

    def _org_client(self, org: str) -> Github:
        """A client authenticated as the App's installation on ``org`` (cached; tokens refresh)."""
        from github import GithubException

        installation_id = self._installation_of.get(org)
        if installation_id is None:
            try:
                installation = self._clients.integration().get_org_installation(org)
            except GithubException as e:
                if e.status == 404:
                    raise NotFoundError(
                        f"the platform's GitHub App is not installed on {org!r}", {"github_org": org}
                    ) from e
                raise DependencyUnavailableError("GitHub did not answer", {"status": e.status}) from e
            installation_id = self._installation_of[org] = int(installation.id)
        return self._clients.installation(installation_id)

    def _call(self, fn: Any) -> Any:
        from github import BadCredentialsException, GithubException, UnknownObjectException

        try:
            return fn()
        except UnknownObjectException:
            return None
        except BadCredentialsException as e:
            raise UnauthenticatedError("GitHub did not accept the credentials", {"status": e.status}) from e
        except GithubException as e:
            raise DependencyUnavailableError("GitHub answered with an error", {"status": e.status}) from e
        except OSError as e:
            raise DependencyUnavailableError("GitHub could not be reached", {"error": type(e).__name__}) from e

    # ------------------------------------------------------------------ identity (user tokens)

    def get_user(self, user_token: str) -> GitHubUser:
        client = self._clients.user(user_token)
        user = self._call(lambda: client.get_user())
        if user is None:
            raise UnauthenticatedError("GitHub did not accept the user token")
        return GitHubUser(id=int(user.id), login=str(user.login), name=user.name, email=user.email)

    def get_user_by_login(self, login: str) -> GitHubUser | None:
        client = self._clients.user()
        user = self._call(lambda: client.get_user(login))
        if user is None:
            return None
        return GitHubUser(id=int(user.id), login=str(user.login), name=user.name, email=user.email)  # the public email

    # ------------------------------------------------------------------ organizations and teams

    def org_role(self, org: str, login: str) -> Literal["admin", "member"] | None:
        try:
            client = self._org_client(org)
        except NotFoundError:
            return None

        def read() -> Any:
            return client.get_user(login).get_organization_membership(org)

        membership = self._call(read)
        if membership is None or membership.state != "active":
            return None
        return "admin" if membership.role == "admin" else "member"

    def org_owners(self, org: str) -> list[GitHubUser]:
        client = self._org_client(org)
        owners = self._call(lambda: list(client.get_organization(org).get_members(role="admin")))
        if owners is None:  # no such organization (a stale login): never "no owners", which would remove them all
            raise NotFoundError(f"the organization {org!r} does not exist", {"github_org": org})
        return [GitHubUser(id=int(u.id), login=str(u.login)) for u in owners]

    def get_team(self, org: str, team_slug: str) -> TeamRef | None:
        try:
            client = self._org_client(org)
        except NotFoundError:
            return None
        organization = self._call(lambda: client.get_organization(org))
        if organization is None:
            return None
        team = self._call(lambda: organization.get_team_by_slug(team_slug))
        if team is None:
            return None
        return TeamRef(
            org=str(organization.login),
            org_id=int(organization.id),
            slug=str(team.slug),
            id=int(team.id),
            name=str(team.name),
        )

    def team_members(self, org: str, team_slug: str) -> list[TeamMember]:
        client = self._org_client(org)

        def read() -> list[TeamMember]:
            team = client.get_organization(org).get_team_by_slug(team_slug)
            maintainers = {u.id: u for u in team.get_members(role="maintainer")}
            out = [TeamMember(login=str(u.login), id=int(u.id), role="maintainer") for u in maintainers.values()]
            out += [
                TeamMember(login=str(u.login), id=int(u.id), role="member")
                for u in team.get_members(role="member")
                if u.id not in maintainers
            ]
            return sorted(out, key=lambda m: m.login)

        members = self._call(read)
        if members is None:
            raise NotFoundError(f"team {org}/{team_slug} does not exist", {"team": f"{org}/{team_slug}"})
        return list(members)
