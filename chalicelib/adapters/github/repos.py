"""The ``GitHubReposPort`` over PyGithub, as the App: repositories through its installations,
compare and contents for push-to-deploy, deployments and statuses, and the App's webhook deliveries.
The App JWT finds installations; installation tokens (refreshed by PyGithub) do the rest. Clients come
from ``GitHubClients`` (clients.py), shared with the App's adapter."""

from __future__ import annotations

import base64
from typing import TYPE_CHECKING, Any

from chalicelib.domain.errors import DependencyUnavailableError
from chalicelib.domain.ports import FailedDelivery, RepoRef

if TYPE_CHECKING:
    from github import Github, GithubIntegration

    from chalicelib.adapters.github.clients import GitHubClients

# GitHub's docs, "Compare two commits": the list of changed files "includes up to 300 changed files for the
# entire comparison", with nothing saying it was cut: a list that long may be incomplete.
COMPARE_FILES_CAP = 300


class PyGithubRepos:
    def __init__(self, clients: GitHubClients) -> None:
        self._clients = clients

    def _integration(self) -> GithubIntegration:
        return self._clients.integration()

    def _client(self, installation_id: int) -> Github:
        return self._clients.installation(installation_id)

    def _call(self, fn: Any) -> Any:
        from github import GithubException, UnknownObjectException

        try:
            return fn()
        except UnknownObjectException:
            return None
        except GithubException as e:
            raise DependencyUnavailableError("GitHub answered with an error", {"status": e.status}) from e
        except OSError as e:
            raise DependencyUnavailableError("GitHub could not be reached", {"error": type(e).__name__}) from e

    def _ref(self, repo: Any, installation_id: int) -> RepoRef:
        return RepoRef(
            id=int(repo.id),
            full_name=str(repo.full_name),
            owner=str(repo.owner.login),
            owner_id=int(repo.owner.id),
            installation_id=installation_id,
            clone_url=str(repo.clone_url),
            default_branch=str(repo.default_branch),
        )

    def repo(self, full_name: str) -> RepoRef | None:
        if full_name.count("/") != 1:
            return None
        owner, name = full_name.split("/")
        installation = self._call(lambda: self._integration().get_repo_installation(owner, name))
        if installation is None:
            return None
        found = self._call(lambda: self._client(installation.id).get_repo(full_name))
        return None if found is None else self._ref(found, int(installation.id))

    def repo_by_id(self, installation_id: int, repo_id: int) -> RepoRef | None:
        found = self._call(lambda: self._client(installation_id).get_repo(repo_id))
        return None if found is None else self._ref(found, installation_id)

    def permission(self, installation_id: int, full_name: str, login: str) -> str:
        repo = self._call(lambda: self._client(installation_id).get_repo(full_name))
        if repo is None:
            return "none"
        value = self._call(lambda: repo.get_collaborator_permission(login))
        return str(value or "none")

    def changed_files(self, installation_id: int, repo_id: int, base: str, head: str) -> list[str] | None:
        """The paths changed from ``base`` to ``head`` (as GitHub compares them: from their merge base), or
        None when GitHub cannot tell them all (the repository or a commit not found, or a list at its cap)."""

        def read() -> list[str] | None:
            comparison = self._client(installation_id).get_repo(repo_id).compare(base, head)
            if len(comparison.files) >= COMPARE_FILES_CAP:
                return None  # maybe truncated: unsure
            paths: set[str] = set()
            for f in comparison.files:
                paths.add(str(f.filename))
                if getattr(f, "previous_filename", None):
                    paths.add(str(f.previous_filename))
            return sorted(paths)

        return self._call(read)  # type: ignore[no-any-return]

    def file_at(self, installation_id: int, repo_id: int, path: str, ref: str) -> str | None:
        def read() -> str:
            content = self._client(installation_id).get_repo(repo_id).get_contents(path, ref=ref)
            return base64.b64decode(content.content).decode()  # type: ignore[union-attr]

        return self._call(read)  # type: ignore[no-any-return]

    def create_deployment(
        self, installation_id: int, repo_id: int, sha: str, environment: str, description: str
    ) -> int:
        repo = self._client(installation_id).get_repo(repo_id)
        deployment = self._call(
            lambda: repo.create_deployment(
                ref=sha,
                environment=environment,
                description=description,
                auto_merge=False,
                required_contexts=[],
                transient_environment=False,
                production_environment=True,
            )
        )
        if deployment is None:
            raise DependencyUnavailableError("GitHub did not create the deployment", {})
        return int(deployment.id)

    def deployment_status(
        self, installation_id: int, repo_id: int, deployment_id: int, state: str, description: str, log_url: str
    ) -> None:
        repo = self._client(installation_id).get_repo(repo_id)
        self._call(
            lambda: repo.get_deployment(deployment_id).create_status(state, target_url=log_url, description=description)
        )

    def commit_status(
        self, installation_id: int, repo_id: int, sha: str, state: str, context: str, description: str, target_url: str
    ) -> None:
        repo = self._client(installation_id).get_repo(repo_id)
        self._call(
            lambda: repo.get_commit(sha).create_status(
                state, target_url=target_url, description=description, context=context
            )
        )

    def fetch_token(self, installation_id: int) -> str:
        """An installation token restricted to reading contents (GitHub: one hour; never stored)."""
        from chalicelib.domain.redaction import register_secret

        token = self._call(
            lambda: self._integration().get_access_token(installation_id, permissions={"contents": "read"}).token
        )
        if not token:
            raise DependencyUnavailableError("GitHub gave no installation token", {"installation_id": installation_id})
        register_secret(str(token))
        return str(token)

    def failed_deliveries(self, limit: int) -> list[FailedDelivery]:
        integration = self._integration()
        # PyGithub 2.10 has no typed deliveries API: the REST endpoint through its requester (app JWT).
        _, data = integration.requester.requestJsonAndCheck(
            "GET", "/app/hook/deliveries", parameters={"per_page": min(limit, 100)}
        )
        return [
            FailedDelivery(str(d["id"]), str(d.get("guid") or ""))
            for d in data or []
            if int(d.get("status_code") or 0) not in range(200, 300) and not d.get("redelivery")
        ]

    def redeliver(self, delivery_id: str) -> None:
        integration = self._integration()
        integration.requester.requestJsonAndCheck("POST", f"/app/hook/deliveries/{delivery_id}/attempts")
