"""Services, deployments, rollbacks, auto-deploy, config vars and logs of a namespace."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from chalice.app import Blueprint, Response

from chalicelib.api.registry import Auth, Call, registry
from chalicelib.composition import get_container
from chalicelib.domain.errors import ConflictError, NotFoundError, PaymentRequiredError, PlatformError, ValidationError

if TYPE_CHECKING:
    from chalicelib.domain.services.deploys import Deployment, Service

bp = Blueprint(__name__)
route = registry.routes(bp, tag="deploys")
S = "chalicelib.api.schemas.services"
SVC = "/v1/namespaces/{ns}/services/{svc}"


def deployment_view(d: Deployment, logs: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    return {
        "id": d.id,
        "service": d.service,
        "status": d.status,
        "finished": d.finished,
        "source": d.source,
        "ref": d.ref,
        "commit": d.commit,
        "reason": d.reason,
        "trigger": d.trigger,
        "created_at": d.created_at,
        "deadline": d.deadline,
        "rollback_of": d.rollback_of,
        "logs": logs,
        "steps": [
            {"name": s.name, "status": s.status, "started_at": s.started_at, "ended_at": s.ended_at, "detail": s.detail}
            for s in d.steps
        ],
    }


def service_view(s: Service, instances: list[Any] | None = None) -> dict[str, Any]:
    return {
        "name": s.name,
        "status": s.status,
        "current_deployment_id": s.current_deployment_id,
        "current_commit": s.current_commit,
        "auto_deploy": s.auto_deploy,
        "auto_deploy_paused": s.auto_deploy_paused,
        "address": s.address,
        "instances": [
            {
                "version": i.version,
                "status": i.status,
                "address": i.metadata.get("address"),
                "started_at": i.metadata.get("started_at"),
            }
            for i in (instances or [])
        ],
    }


@route(
    SVC + "/deployments",
    "POST",
    status=202,
    auth=Auth(scope="deploy", role="member"),
    request=f"{S}:DeployIn",
    response=f"{S}:DeploymentOut",
    errors=(ValidationError, NotFoundError, PaymentRequiredError),
    summary="Deploy a commit (or ref) of a repository; 202, the deploy state machine takes it from there",
)
def create_deployment(call: Call) -> dict[str, Any]:
    b = call.body
    dep = get_container().deploys.request(
        call.params["ns"],
        call.params["svc"],
        b.source,
        b.commit or b.ref,
        {"kind": "api", "actor": call.principal.actor},
    )
    call.audit_target = f"deployment:{dep.id}"
    return deployment_view(dep)


@route(
    "/v1/namespaces/{ns}/services",
    "GET",
    auth=Auth(scope="read", role="viewer"),
    response=f"{S}:ServicesOut",
    errors=(NotFoundError,),
    summary="The namespace's services",
)
def list_services(call: Call) -> dict[str, Any]:
    return {"services": [service_view(s) for s in get_container().deploys.services(call.params["ns"])]}


@route(
    SVC,
    "GET",
    auth=Auth(scope="read", role="viewer"),
    response=f"{S}:ServiceOut",
    errors=(NotFoundError,),
    summary="A service: status, current deployment and commit, instances, address",
)
def get_service(call: Call) -> dict[str, Any]:
    d = get_container().deploys
    service = d.service(call.params["ns"], call.params["svc"])
    try:
        instances = d.runtime_view(call.params["ns"], service.name)
    except PlatformError:  # the runtime's view is a bonus: the record answers even when it is unreachable
        instances = []
    return service_view(service, instances)


@route(
    SVC,
    "DELETE",
    status=204,
    auth=Auth(scope="deploy", role="admin"),
    errors=(NotFoundError,),
    response_content_type="text/plain",
    summary="Delete a service: its processes are stopped; its deployments are kept",
)
def delete_service(call: Call) -> Response:
    get_container().deploys.delete_service(call.params["ns"], call.params["svc"])
    return Response(body="", status_code=204, headers={"Content-Type": "text/plain"})


@route(
    SVC + "/deployments",
    "GET",
    auth=Auth(scope="read", role="viewer"),
    response=f"{S}:DeploymentsOut",
    errors=(NotFoundError,),
    summary="The service's deployments, newest first",
)
def list_deployments(call: Call) -> dict[str, Any]:
    deps = get_container().deploys.deployments(call.params["ns"], call.params["svc"])
    return {"deployments": [deployment_view(d) for d in deps]}


@route(
    SVC + "/deployments/{deployment_id}",
    "GET",
    auth=Auth(scope="read", role="viewer"),
    response=f"{S}:DeploymentOut",
    errors=(NotFoundError,),
    summary="A deployment: every step with timestamps, the commit, its trigger, its logs",
)
def get_deployment(call: Call) -> dict[str, Any]:
    d = get_container().deploys
    dep = d.deployment(call.params["ns"], call.params["svc"], call.params["deployment_id"])
    from chalicelib.domain.model import role_at_least

    try:
        if not role_at_least(call.access.role, "member"):
            raise NotFoundError("logs are for members", {})  # viewers see the record, not the logs
        lines = [
            {"timestamp": r.timestamp.isoformat(), "message": r.message}
            for r in d.logs(call.params["ns"], dep.service, None, 200)
            if r.metadata.get("version") == dep.id
        ]
    except PlatformError:  # logs are a bonus: the deployment answers even when the runtime is unreachable
        lines = []
    return deployment_view(dep, lines)


@route(
    SVC + "/rollback",
    "POST",
    status=202,
    auth=Auth(scope="deploy", role="member"),
    request=f"{S}:RollbackIn",
    response=f"{S}:RollbackOut",
    errors=(NotFoundError, ConflictError, PaymentRequiredError),
    summary="Redeploy an earlier good deployment's kept artifact (no rebuild); pauses auto-deploy",
)
def rollback(call: Call) -> dict[str, Any]:
    dep = get_container().deploys.rollback(
        call.params["ns"], call.params["svc"], call.body.deployment_id, call.principal.actor
    )
    call.audit_target = f"deployment:{dep.id}"
    return {
        "deployment": deployment_view(dep),
        "auto_deploy_paused": True,
        "message": "auto-deploy is paused for this service until you resume it (POST .../auto-deploy)",
    }


@route(
    SVC + "/auto-deploy",
    "POST",
    auth=Auth(scope="deploy", role="member"),
    request=f"{S}:AutoDeployIn",
    response=f"{S}:ServiceOut",
    errors=(NotFoundError,),
    summary="Turn auto-deploy on (resuming it after a rollback) or off",
)
def auto_deploy(call: Call) -> dict[str, Any]:
    return service_view(
        get_container().deploys.set_auto_deploy(call.params["ns"], call.params["svc"], call.body.enabled)
    )


def _config_view(ns: str, svc: str, redeploy: Deployment | None = None) -> dict[str, Any]:
    return {
        "vars": [
            {"key": v.key, "secret": v.secret, "value": None if v.secret else v.value}
            for v in get_container().deploys.config(ns, svc)
        ],
        "redeploy": deployment_view(redeploy) if redeploy else None,
    }


@route(
    SVC + "/config",
    "GET",
    tag="config",
    auth=Auth(scope="read", role="member"),
    response=f"{S}:ConfigOut",
    errors=(NotFoundError,),
    summary="Config vars: plain values, and secrets by name only",
)
def get_config(call: Call) -> dict[str, Any]:
    return _config_view(call.params["ns"], call.params["svc"])


@route(
    SVC + "/config",
    "PUT",
    tag="config",
    auth=Auth(scope="deploy", role="member"),
    request=f"{S}:ConfigIn",
    response=f"{S}:ConfigOut",
    errors=(NotFoundError, ValidationError, PaymentRequiredError),
    summary="Set config vars (secrets encrypted at rest, never shown again); redeploys the current commit",
)
def put_config(call: Call) -> dict[str, Any]:
    values = {k: (v.value, v.secret) for k, v in call.body.vars.items()}
    dep = get_container().deploys.set_config(call.params["ns"], call.params["svc"], values, call.principal.actor)
    call.audit_target = f"config:{','.join(sorted(values))}"
    return _config_view(call.params["ns"], call.params["svc"], dep)


@route(
    SVC + "/config/{key}",
    "PUT",
    tag="config",
    auth=Auth(scope="deploy", role="member"),
    request=f"{S}:ConfigValueIn",
    response=f"{S}:ConfigOut",
    errors=(NotFoundError, ValidationError, PaymentRequiredError),
    summary="Set one config var; redeploys the current commit",
)
def put_config_var(call: Call) -> dict[str, Any]:
    key = call.params["key"]
    dep = get_container().deploys.set_config(
        call.params["ns"], call.params["svc"], {key: (call.body.value, call.body.secret)}, call.principal.actor
    )
    call.audit_target = f"config:{key}"
    return _config_view(call.params["ns"], call.params["svc"], dep)


@route(
    SVC + "/config/{key}",
    "DELETE",
    tag="config",
    auth=Auth(scope="deploy", role="member"),
    response=f"{S}:ConfigOut",
    errors=(NotFoundError, PaymentRequiredError),
    summary="Delete a config var; redeploys",
)
def delete_config_var(call: Call) -> dict[str, Any]:
    key = call.params["key"]
    dep = get_container().deploys.delete_config(call.params["ns"], call.params["svc"], key, call.principal.actor)
    call.audit_target = f"config:{key}"
    return _config_view(call.params["ns"], call.params["svc"], dep)


@route(
    SVC + "/logs",
    "GET",
    auth=Auth(scope="read", role="member"),
    response=f"{S}:LogsOut",
    errors=(NotFoundError, ValidationError),
    query={"since": "ISO-8601 time", "tail": "at most 1000 lines (default 100)"},
    summary="The service's logs (stdout and stderr of its processes)",
)
def service_logs(call: Call) -> dict[str, Any]:
    since = call.time_param("since")
    tail = call.int_param("tail", 100, 1, 1000)
    from chalicelib.domain.services.deploys import UNTIMED

    records, note = get_container().deploys.logs_page(call.params["ns"], call.params["svc"], since, tail)
    answer: dict[str, Any] = {
        "lines": [
            {
                "timestamp": None if r.timestamp == UNTIMED else r.timestamp,
                "message": r.message,
                "version": r.metadata.get("version"),
            }
            for r in records
        ]
    }
    if note:
        answer["since_ignored"] = note
    return answer
