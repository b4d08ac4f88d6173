"""REST handlers for deployments, deployment statuses and commit statuses
(``/repos/{o}/{r}/deployments[/{id}/statuses]``, ``/statuses/{sha}``, ``/commits/{ref}/status[es]``).
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import unquote

from localcloud.standins.github.api import ApiError, ApiRequest, ApiResponse, _validation_failed, not_found
from localcloud.standins.github.common import COMMIT_STATES, DEPLOYMENT_STATES, _iso
from localcloud.standins.github.state import CommitStatus, Deployment, DeploymentStatus, Repo


class DeploymentsMixin:
    """Mixed into :class:`~localcloud.standins.github.server.GitHubStandIn` (its ``state``, ``lock``, ``clock``)."""

    # ------------------------------------------------ handlers: deployments and statuses

    def create_deployment(self, req: ApiRequest) -> ApiResponse:
        repo = self._repo(req, permission="deployments", level="write")
        body = req.json_object()
        ref = body.get("ref")
        if not isinstance(ref, str) or not ref:
            raise _validation_failed("ref", ref)
        sha = self.bare(repo).resolve(ref)
        if sha is None:
            raise ApiError(422, f"No ref found for: {ref}")
        contexts = body.get("required_contexts")
        latest = self._latest_statuses(repo, sha)
        wanted = list(latest) if contexts is None else [str(c) for c in contexts]
        failing = [c for c in wanted if c not in latest or latest[c].state != "success"]
        if failing:
            raise ApiError(
                409,
                f"Conflict: Commit status checks failed for {ref}.",
                errors=[
                    {
                        "contexts": [
                            {"context": c, "state": latest[c].state if c in latest else "missing"} for c in failing
                        ],
                        "resource": "Deployment",
                        "field": "required_contexts",
                        "code": "invalid",
                    }
                ],
            )
        environment = str(body.get("environment") or "production")
        production = body.get("production_environment")
        payload = body.get("payload", {})
        if isinstance(payload, str) and payload:
            try:
                payload = json.loads(payload)
            except ValueError:
                pass
        deployment = Deployment(
            id=self._next_deployment_id,
            repo_id=repo.id,
            sha=sha,
            ref=ref,
            task=str(body.get("task") or "deploy"),
            environment=environment,
            original_environment=environment,
            description=body.get("description"),
            payload=payload if payload is not None else {},
            transient_environment=bool(body.get("transient_environment", False)),
            production_environment=bool(production) if production is not None else environment == "production",
            **self._made_by(req),
        )
        self._next_deployment_id += 1
        self.state.deployments[deployment.id] = deployment
        return ApiResponse(201, self.deployment_body(deployment, req.api))

    def _made_by(self, req: ApiRequest) -> dict[str, Any]:
        """Who made a deployment or a deployment status (the caller: a user, or the app's bot for an
        installation token), whether through the app (``performed_via_github_app``), and when."""
        assert req.caller is not None
        return {"creator": req.caller, "via_app": req.installation is not None, "created_at": _iso(self.clock.now())}

    def list_deployments(self, req: ApiRequest) -> ApiResponse:
        repo = self._repo(req, permission="deployments")
        filters = {k: req.arg(k) for k in ("sha", "ref", "task", "environment")}
        items = [
            d
            for d in sorted(self.state.deployments.values(), key=lambda d: d.id, reverse=True)
            if d.repo_id == repo.id and all(v is None or getattr(d, k) == v for k, v in filters.items())
        ]
        return self.paginate(req, [self.deployment_body(d, req.api) for d in items])

    def _deployment(self, req: ApiRequest, repo: Repo) -> Deployment:
        d = self.state.deployments.get(int(req.params["deployment_id"]))
        if d is None or d.repo_id != repo.id:
            raise not_found()
        return d

    def get_deployment(self, req: ApiRequest) -> ApiResponse:
        repo = self._repo(req, permission="deployments")
        return ApiResponse(200, self.deployment_body(self._deployment(req, repo), req.api))

    def create_deployment_status(self, req: ApiRequest) -> ApiResponse:
        repo = self._repo(req, permission="deployments", level="write")
        d = self._deployment(req, repo)
        body = req.json_object()
        state = body.get("state")
        if state not in DEPLOYMENT_STATES:
            raise _validation_failed("state", state)
        if body.get("environment"):
            d.environment = str(body["environment"])
        status = self._add_deployment_status(
            req,
            d,
            state,
            description=str(body.get("description") or ""),
            log_url=str(body.get("log_url") or body.get("target_url") or ""),
            environment_url=str(body.get("environment_url") or ""),
        )
        if state == "success" and body.get("auto_inactive", True):
            self._inactivate_previous(d, req)
        return ApiResponse(201, self.deployment_status_body(status, req.api))

    def _inactivate_previous(self, current: Deployment, req: ApiRequest) -> None:
        """GitHub's ``auto_inactive``: earlier successful deployments to the same non-transient,
        non-production environment get an ``inactive`` status."""
        for d in self.state.deployments.values():
            if d.id >= current.id or d.repo_id != current.repo_id or d.environment != current.environment:
                continue
            if d.transient_environment or d.production_environment:
                continue
            latest = [s for s in self.state.deployment_statuses if s.deployment_id == d.id]
            if latest and latest[-1].state == "success":
                self._add_deployment_status(req, d, "inactive")

    def _add_deployment_status(
        self,
        req: ApiRequest,
        d: Deployment,
        state: str,
        description: str = "",
        log_url: str = "",
        environment_url: str = "",
    ) -> DeploymentStatus:
        """A new status of ``d`` by the caller, now, with the next id."""
        status = DeploymentStatus(
            id=self._next_deployment_status_id,
            deployment_id=d.id,
            state=state,
            description=description,
            environment=d.environment,
            log_url=log_url,
            environment_url=environment_url,
            **self._made_by(req),
        )
        self._next_deployment_status_id += 1
        self.state.deployment_statuses.append(status)
        return status

    def list_deployment_statuses(self, req: ApiRequest) -> ApiResponse:
        repo = self._repo(req, permission="deployments")
        d = self._deployment(req, repo)
        items = sorted((s for s in self.state.deployment_statuses if s.deployment_id == d.id), key=lambda s: -s.id)
        return self.paginate(req, [self.deployment_status_body(s, req.api) for s in items])

    def get_deployment_status(self, req: ApiRequest) -> ApiResponse:
        repo = self._repo(req, permission="deployments")
        d = self._deployment(req, repo)
        wanted = int(req.params["status_id"])
        found = next((s for s in self.state.deployment_statuses if s.id == wanted and s.deployment_id == d.id), None)
        if found is None:
            raise not_found()
        return ApiResponse(200, self.deployment_status_body(found, req.api))

    def create_commit_status(self, req: ApiRequest) -> ApiResponse:
        repo = self._repo(req, permission="statuses", level="write")
        ref = unquote(req.params["sha"])
        sha = self.bare(repo).resolve(ref)
        if sha is None or not sha.startswith(ref.lower()):
            raise ApiError(422, f"No commit found for SHA: {ref}")
        body = req.json_object()
        state = body.get("state")
        if state not in COMMIT_STATES:
            raise _validation_failed("state", state)
        assert req.caller is not None
        status = CommitStatus(
            id=self._next_commit_status_id,
            repo_id=repo.id,
            sha=sha,
            state=state,
            target_url=body.get("target_url"),
            description=body.get("description"),
            context=str(body.get("context") or "default"),
            creator=req.caller,
            created_at=_iso(self.clock.now()),
        )
        self._next_commit_status_id += 1
        self.state.commit_statuses.append(status)
        return ApiResponse(201, self.commit_status_body(status, req.api))

    def _latest_statuses(self, repo: Repo, sha: str) -> dict[str, CommitStatus]:
        latest: dict[str, CommitStatus] = {}
        for s in self.state.commit_statuses:
            if s.repo_id == repo.id and s.sha == sha:
                latest[s.context] = s  # appended in time order: the last one wins
        return latest

    def list_commit_statuses(self, req: ApiRequest) -> ApiResponse:
        repo = self._repo(req, permission="statuses")
        sha = self.bare(repo).resolve(unquote(req.params["ref"]))
        items = [
            s for s in reversed(self.state.commit_statuses) if sha is not None and s.repo_id == repo.id and s.sha == sha
        ]
        return self.paginate(req, [self.commit_status_body(s, req.api) for s in items])

    def get_combined_status(self, req: ApiRequest) -> ApiResponse:
        repo = self._repo(req, permission="statuses")
        sha = self._resolve(repo, unquote(req.params["ref"]))
        latest = sorted(self._latest_statuses(repo, sha).values(), key=lambda s: -s.id)
        states = {s.state for s in latest}
        if states & {"error", "failure"}:
            state = "failure"
        elif not latest or "pending" in states:
            state = "pending"
        else:
            state = "success"
        page = self.paginate(req, [self.commit_status_body(s, req.api) for s in latest])
        r = f"{req.api}/repos/{repo.full_name}"
        body = {
            "state": state,
            "statuses": page.body,
            "sha": sha,
            "total_count": len(latest),
            "repository": self.repo_body(repo, req.api),
            "commit_url": f"{r}/commits/{sha}",
            "url": f"{r}/commits/{sha}/status",
        }
        return ApiResponse(200, body, page.headers)
