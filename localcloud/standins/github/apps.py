"""REST handlers for the GitHub App (JWT): the app, its installations and installation tokens, the
webhook's config and deliveries (``/app``, ``/app/installations``, ``/app/hook``, ``/installation/token``,
``/user/installations``).
"""

from __future__ import annotations

import json
from datetime import timedelta
from urllib.parse import urlencode

from localcloud.standins.github.api import ApiError, ApiRequest, ApiResponse, _int_arg, _validation_failed, not_found
from localcloud.standins.github.common import (
    DEFAULT_PER_PAGE,
    INSTALLATION_TOKEN_TTL,
    MAX_PER_PAGE,
    NOT_FOR_INTEGRATIONS,
    PERMISSION_LEVELS,
    _iso,
    _random_token,
)
from localcloud.standins.github.state import Delivery, Installation, InstallationToken


class AppsMixin:
    """Mixed into :class:`~localcloud.standins.github.server.GitHubStandIn` (its ``state``, ``lock``, ``clock``)."""

    # ------------------------------------------------ handlers: the app (JWT) and its installations

    def get_app(self, req: ApiRequest) -> ApiResponse:
        return ApiResponse(200, self.app_body(req.api))

    def list_app_installations(self, req: ApiRequest) -> ApiResponse:
        installations = sorted(self.state.installations.values(), key=lambda i: i.id)
        return self.paginate(req, [self.installation_body(i, req.api) for i in installations])

    def _installation_param(self, req: ApiRequest) -> Installation:
        installation = self.state.installations.get(int(req.params["installation_id"]))
        if installation is None:
            raise ApiError(404, "Not Found")
        return installation

    def get_app_installation(self, req: ApiRequest) -> ApiResponse:
        return ApiResponse(200, self.installation_body(self._installation_param(req), req.api))

    def get_org_installation(self, req: ApiRequest) -> ApiResponse:
        installation = self.state.installation_for(self._org(req).login)
        if installation is None:
            raise not_found()
        return ApiResponse(200, self.installation_body(installation, req.api))

    def create_access_token(self, req: ApiRequest) -> ApiResponse:
        """``POST /app/installations/{id}/access_tokens``: a ``ghs_`` token for 1 hour, optionally with fewer
        permissions than the installation's."""
        installation = self._installation_param(req)
        if installation.suspended_at is not None:
            raise ApiError(403, "This installation has been suspended")
        body = req.json_object()
        if body.get("repositories") or body.get("repository_ids"):
            raise ApiError(
                422,
                "There is at least one repository that does not exist or is not accessible to the parent installation.",
            )
        permissions = dict(installation.permissions)
        wanted = body.get("permissions")
        if wanted:  # absent or empty: all of the installation's
            if not isinstance(wanted, dict):
                raise _validation_failed("permissions", wanted)
            for name, level in wanted.items():
                granted = installation.permissions.get(name)
                if granted is None or PERMISSION_LEVELS.get(level, 99) > PERMISSION_LEVELS.get(granted, 0):
                    raise ApiError(422, "The permissions requested are not granted to this installation.")
            permissions = {str(k): str(v) for k, v in wanted.items()}
        expires_at = self.clock.now() + timedelta(seconds=INSTALLATION_TOKEN_TTL)
        token = _random_token("ghs_")
        self.state.installation_tokens[token] = InstallationToken(installation.id, expires_at, permissions)
        return ApiResponse(
            201,
            {
                "token": token,
                "expires_at": _iso(expires_at),
                "permissions": permissions,
                "repository_selection": installation.repository_selection,
            },
        )

    def revoke_installation_token(self, req: ApiRequest) -> ApiResponse:
        if req.installation is None:
            raise ApiError(403, NOT_FOR_INTEGRATIONS)
        credential = (req.headers.get("authorization") or "").partition(" ")[2].strip()
        self.state.installation_tokens.pop(credential, None)
        return ApiResponse(204)

    def list_my_installations(self, req: ApiRequest) -> ApiResponse:
        """``GET /user/installations``: the app's installations the user can reach (their organizations)."""
        assert req.caller is not None
        installations = [
            i
            for i in sorted(self.state.installations.values(), key=lambda i: i.id)
            if self.is_active_member(self.state.org(i.account), req.caller.login)
        ]
        page = self.paginate(req, [self.installation_body(i, req.api) for i in installations])
        return ApiResponse(200, {"total_count": len(installations), "installations": page.body}, page.headers)

    def get_hook_config(self, req: ApiRequest) -> ApiResponse:
        return ApiResponse(
            200, {"content_type": "json", "insecure_ssl": "0", "url": self.webhook_url or "", "secret": "********"}
        )

    def list_deliveries(self, req: ApiRequest) -> ApiResponse:
        """Newest first, cursor-paginated (``per_page``, ``cursor``) as GitHub's."""
        per_page = min(max(_int_arg(req.arg("per_page"), DEFAULT_PER_PAGE), 1), MAX_PER_PAGE)
        items = sorted(self.state.deliveries, key=lambda d: d.id, reverse=True)
        cursor = req.arg("cursor")
        if cursor:
            before = _int_arg(cursor.removeprefix("v1_"), 0)
            items = [d for d in items if d.id <= before]
        page, rest = items[:per_page], items[per_page:]
        headers = {}
        if rest:
            query = [(k, v) for k, v in req.query if k != "cursor"] + [("cursor", f"v1_{rest[0].id}")]
            headers["Link"] = f'<{req.api}{req.path}?{urlencode(query)}>; rel="next"'
        return ApiResponse(200, [d.summary() for d in page], headers)

    def _delivery_param(self, req: ApiRequest) -> Delivery:
        wanted = int(req.params["delivery_id"])
        found = next((d for d in self.state.deliveries if d.id == wanted), None)
        if found is None:
            raise not_found()
        return found

    def get_delivery(self, req: ApiRequest) -> ApiResponse:
        d = self._delivery_param(req)
        try:
            payload = json.loads(d.body)
        except ValueError:
            payload = None
        return ApiResponse(
            200,
            {
                **d.summary(),
                "url": d.url,
                "request": {"headers": d.request_headers, "payload": payload},
                "response": {"headers": d.response_headers, "payload": d.response_body},
            },
        )

    def redeliver_delivery(self, req: ApiRequest) -> ApiResponse:
        d = self._delivery_param(req)
        self.redeliver(d.id)
        return ApiResponse(202, {})
