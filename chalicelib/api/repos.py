"""Repositories linked to a namespace (GitOps)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from chalice.app import Blueprint, Response

from chalicelib.api.registry import Auth, Call, registry
from chalicelib.composition import get_container
from chalicelib.domain.errors import ConflictError, ForbiddenError, NotFoundError, ValidationError

if TYPE_CHECKING:
    from chalicelib.domain.services.gitops import Link

bp = Blueprint(__name__)
route = registry.routes(bp, tag="gitops")
S = "chalicelib.api.schemas.repos"
REPO = "/v1/namespaces/{ns}/repos/{repo_id}"


def link_view(link: Link) -> dict[str, Any]:
    return {
        "id": link.repo_id,
        "full_name": link.full_name,
        "installation_id": link.installation_id,
        "branch": link.branch,
        "auto_deploy": link.auto_deploy,
        "status": link.status,
        "disabled_reason": link.disabled_reason,
        "created_at": link.created_at,
    }


def _repo_id(call: Call) -> int:
    try:
        return int(call.params["repo_id"])
    except ValueError:
        raise NotFoundError("no such linked repository", {"repo_id": call.params["repo_id"]}) from None


@route(
    "/v1/namespaces/{ns}/repos",
    "POST",
    status=201,
    auth=Auth(scope="deploy", role="admin"),
    request=f"{S}:RepoLinkIn",
    response=f"{S}:RepoLinkOut",
    errors=(ValidationError, ForbiddenError, ConflictError),
    summary="Link a repository: the App must be installed on it, in this namespace's organization, and "
    "the caller must have push access",
)
def link_repo(call: Call) -> dict[str, Any]:
    b = call.body
    link = get_container().gitops.link(call.principal, call.params["ns"], b.repo, b.branch, b.auto_deploy)
    call.audit_target = f"repo:{link.repo_id}"
    return link_view(link)


@route(
    "/v1/namespaces/{ns}/repos",
    "GET",
    auth=Auth(scope="read", role="viewer"),
    response=f"{S}:RepoLinksOut",
    errors=(NotFoundError,),
    summary="The namespace's linked repositories",
)
def list_repos(call: Call) -> dict[str, Any]:
    return {"repos": [link_view(link) for link in get_container().gitops.links(call.params["ns"])]}


@route(
    REPO,
    "GET",
    auth=Auth(scope="read", role="viewer"),
    response=f"{S}:RepoLinkOut",
    errors=(NotFoundError,),
    summary="A linked repository (disabled ones say why)",
)
def get_repo(call: Call) -> dict[str, Any]:
    return link_view(get_container().gitops.get(call.params["ns"], _repo_id(call)))


@route(
    REPO,
    "PATCH",
    auth=Auth(scope="deploy", role="admin"),
    request=f"{S}:RepoPatchIn",
    response=f"{S}:RepoLinkOut",
    errors=(NotFoundError,),
    summary="Change the branch or auto-deploy",
)
def patch_repo(call: Call) -> dict[str, Any]:
    link = get_container().gitops.update(call.params["ns"], _repo_id(call), call.body.branch, call.body.auto_deploy)
    call.audit_target = f"repo:{link.repo_id}"
    return link_view(link)


@route(
    REPO,
    "DELETE",
    status=204,
    auth=Auth(scope="deploy", role="admin"),
    errors=(NotFoundError,),
    response_content_type="text/plain",
    summary="Unlink a repository",
)
def unlink_repo(call: Call) -> Response:
    get_container().gitops.unlink(call.params["ns"], _repo_id(call), call.principal.actor)
    call.audit_target = f"repo:{call.params['repo_id']}"
    return Response(body="", status_code=204, headers={"Content-Type": "text/plain"})
