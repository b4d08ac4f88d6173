"""The stand-in-only routes (outside ``/api/v3``; GitHub has none of them): ``POST /_stand-in/repos`` and
``POST /_stand-in/repos/{owner}/{repo}/commits`` (what ``localcloud.github_push`` calls), ``GET``/``DELETE
/_stand-in/requests`` (the request log), ``POST /_stand-in/device/approve`` and ``/deny`` (the user's side of the
device flow).
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from urllib.parse import unquote

from localcloud.standins import RawRequest, RawResponse
from localcloud.standins.github.api import _json, _json_body, not_found
from localcloud.standins.github.common import API_PREFIX, JSON_TYPE
from localcloud.standins.github.git import ZERO_SHA, GitError


class StandInRoutesMixin:
    """Mixed into :class:`~localcloud.standins.github.server.GitHubStandIn` (its ``state``, ``lock``, ``clock``)."""

    def _handle_stand_in(self, request: RawRequest, path: str) -> RawResponse:
        path, method = path.rstrip("/"), request.method
        if path == "/_stand-in/repos" and method == "POST":
            return self._stand_in_create_repo(request)
        pushed = re.fullmatch(r"/_stand-in/repos/([^/]+)/([^/]+)/commits", path)
        if pushed and method == "POST":
            return self._stand_in_commit(request, unquote(pushed[1]), unquote(pushed[2]))
        if path == "/_stand-in/requests":
            if method == "GET":
                body = json.dumps(self.requests_log()).encode()
                return RawResponse(200, body, {"Content-Type": JSON_TYPE})
            if method == "DELETE":
                self.clear_requests()
                return RawResponse(204)
        if path in ("/_stand-in/device/approve", "/_stand-in/device/deny") and method == "POST":
            try:
                data = json.loads(request.body or b"{}")
            except ValueError:
                data = None
            if not isinstance(data, dict) or not isinstance(data.get("user_code"), str):
                return _json(422, {"message": "user_code is required"})
            try:
                if path.endswith("/approve"):
                    login = data.get("login")
                    if not isinstance(login, str) or login.lower() not in self.state.users:
                        return _json(422, {"message": f"no user {login!r}"})
                    self.approve_device(data["user_code"], login)
                else:
                    self.deny_device(data["user_code"])
            except KeyError:
                return _json(404, not_found().body())
            with self.lock:
                device = self._device_by_user_code(data["user_code"])
                return _json(200, {"user_code": device.user_code, "status": device.status, "login": device.login})
        return _json(404, not_found().body())

    def _stand_in_create_repo(self, request: RawRequest) -> RawResponse:
        """``POST /_stand-in/repos {owner, name, from_dir?, private?, default_branch?, description?}``."""
        data = _json_body(request)
        owner, name = data.get("owner"), data.get("name")
        if not isinstance(owner, str) or not isinstance(name, str):
            return _json(422, {"message": "owner and name are required"})
        from_dir = data.get("from_dir")
        if from_dir is not None and (not isinstance(from_dir, str) or not Path(from_dir).is_dir()):
            return _json(422, {"message": f"from_dir: no directory {from_dir!r}"})
        try:
            with self.lock:
                self.create_repo(
                    owner,
                    name,
                    private=bool(data.get("private", True)),
                    default_branch=str(data.get("default_branch") or "main"),
                    from_dir=Path(from_dir) if from_dir else None,
                    description=data.get("description"),
                    author_login=data.get("author"),
                )
                body = self.repo_body(self.state.repo(owner, name), request.base + API_PREFIX)
        except (KeyError, ValueError) as error:
            return _json(422, {"message": str(error).strip("'\"")})
        return _json(201, body)

    def _stand_in_commit(self, request: RawRequest, owner: str, name: str) -> RawResponse:
        """``POST /_stand-in/repos/{owner}/{repo}/commits {files: {path: content|null}, message, branch?,
        author?, force?}`` -> ``{sha, before, branch, delivery: {id, guid} | null}``: commits, pushes and sends
        the ``push`` webhook, as :meth:`push`."""
        data = _json_body(request)
        files, message = data.get("files"), data.get("message")
        if (
            not isinstance(files, dict)
            or not all(isinstance(k, str) and (v is None or isinstance(v, str)) for k, v in files.items())
            or not isinstance(message, str)
            or not message.strip()
        ):
            return _json(422, {"message": "files ({path: content or null}) and message are required"})
        with self.lock:
            try:
                repo = self.state.repo(owner, name)
            except KeyError:
                return _json(404, not_found().body())
            branch = str(data.get("branch") or repo.default_branch)
            try:
                before = self.bare(repo).branch_head(branch) or ZERO_SHA
                sha, outgoing = self._push(
                    owner,
                    name,
                    [(files, message)],
                    branch,
                    str(data.get("author") or "ada"),
                    force=bool(data.get("force", False)),
                )
            except (KeyError, ValueError, GitError) as error:
                return _json(422, {"message": str(error).strip("'\"")})
            delivery = {"id": outgoing.delivery_id, "guid": outgoing.guid} if outgoing is not None else None
        return _json(201, {"sha": sha, "before": before, "branch": branch, "delivery": delivery})
