"""Platform API tokens: shown once, stored as hashes, scoped, expiring, revocable."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from chalice.app import Blueprint, Response

from chalicelib.api.registry import Auth, Call, registry
from chalicelib.composition import get_container
from chalicelib.domain.errors import ForbiddenError, NotFoundError, ValidationError

if TYPE_CHECKING:
    from chalicelib.domain.model import ApiToken

bp = Blueprint(__name__)
S = "chalicelib.api.schemas.accounts"


def token_view(t: ApiToken) -> dict[str, Any]:
    return {
        "id": t.id,
        "name": t.name,
        "namespace": t.namespace,
        "scopes": sorted(t.scopes),
        "created_at": t.created_at,
        "expires_at": t.expires_at,
        "last_used_at": t.last_used_at,
    }


@registry.route(
    bp,
    "/v1/tokens",
    "POST",
    tag="tokens",
    status=201,
    auth=Auth(scope="read"),
    request=f"{S}:TokenIn",
    response=f"{S}:TokenCreatedOut",
    errors=(ForbiddenError, NotFoundError, ValidationError),
    summary="Create an API token for one namespace; the secret is shown once",
)
def create_token(call: Call) -> dict[str, Any]:
    b = call.body
    secret, token = get_container().auth.create_token(call.principal, b.name, b.namespace, list(b.scopes), b.expires_in)
    call.audit_namespace = b.namespace
    call.audit_target = f"token:{token.id}"
    return {**token_view(token), "token": secret}


@registry.route(
    bp,
    "/v1/tokens",
    "GET",
    tag="tokens",
    auth=Auth(scope="read"),
    response=f"{S}:TokensOut",
    summary="The caller's live tokens (no secrets), with when each was last used",
)
def list_tokens(call: Call) -> dict[str, Any]:
    return {"tokens": [token_view(t) for t in get_container().auth.list_tokens(call.principal)]}


@registry.route(
    bp,
    "/v1/tokens/{token_id}",
    "DELETE",
    tag="tokens",
    status=204,
    auth=Auth(scope="read"),
    errors=(NotFoundError,),
    response_content_type="text/plain",
    summary="Revoke one of your tokens",
)
def revoke_token(call: Call) -> Response:
    token = get_container().auth.revoke_token(call.principal, call.params["token_id"])
    call.audit_namespace = token.namespace
    call.audit_target = f"token:{token.id}"
    return Response(body="", status_code=204, headers={"Content-Type": "text/plain"})
