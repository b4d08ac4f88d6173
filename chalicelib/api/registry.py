"""Our own route registry. Each route declares its request and response models (pydantic), the
token scope and namespace role it needs, its success status and the errors it can answer; the
OpenAPI 3.1 document is generated from these declarations (Chalice makes Swagger 2.0 only).

A view receives a ``Call`` (the parsed request) and answers a pydantic model, a dict, or a
``chalice.Response``. Bodies are parsed here, once, not by Chalice (``Request.json_body`` is never
used: it turns only ``ValueError`` into its own 400): the body must be at most ``MAX_BODY_BYTES``
(413), sent as JSON (415) and readable JSON (400 ``invalid_json``: chalicelib/domain/json_text.py),
all checked before the caller is authenticated, so that a body nobody can read costs no lookup;
then, for a caller allowed to call the route, valid against the model (422 naming the failing
fields)."""

from __future__ import annotations

import importlib
import json
import os
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from functools import cache
from typing import TYPE_CHECKING, Any, Literal, Union

from chalice.app import Blueprint, Response

from chalicelib.api.errors import error_response, internal_error_response, request_id_of
from chalicelib.domain.errors import (
    PayloadTooLargeError,
    PlatformError,
    UnsupportedMediaTypeError,
    ValidationError,
)
from chalicelib.logs import get_logger

if TYPE_CHECKING:
    from pydantic import BaseModel
    from pydantic import ValidationError as PydanticValidationError

# The API's request body limit (the local front end refuses a larger Content-Length with it too; the
# runtime proxy's limit for the tenant services' requests is another: proxy.SERVICE_MAX_BODY_BYTES).
MAX_BODY_BYTES = 1024 * 1024


def check_body_size(length: int) -> None:
    """413 ``payload_too_large`` for a body of ``length`` bytes over ``MAX_BODY_BYTES``."""
    if length > MAX_BODY_BYTES:
        raise PayloadTooLargeError(
            f"the body is {length} bytes; the limit is {MAX_BODY_BYTES}", {"limit": MAX_BODY_BYTES}
        )


# A model, or "module:Class" naming one. Blueprints name their models by string so that importing
# the app does not import pydantic (cold starts): a model is imported when a request first needs it.
ModelRef = Union[type["BaseModel"], str]  # noqa: UP007


@cache
def _import_model(ref: str) -> type[BaseModel]:
    module, _, name = ref.partition(":")
    model: type[BaseModel] = getattr(importlib.import_module(module), name)
    return model


def resolve(ref: ModelRef | None) -> type[BaseModel] | None:
    if ref is None or not isinstance(ref, str):
        return ref
    return _import_model(ref)


@dataclass(frozen=True)
class PathParameter:
    """A path parameter checked before the view runs: a value ``pattern`` does not match answers 422.
    ``pattern`` names the domain's compiled regex as "module:NAME" (imported on first use); the
    OpenAPI document gives it, and the 422, on every route with the parameter."""

    pattern: str
    what: str  # for people: "a service name: a DNS label (...)"


PATH_PARAMETERS: dict[str, PathParameter] = {
    "svc": PathParameter(
        "chalicelib.domain.services.deploys:SERVICE_NAME", "a service name: a DNS label (a-z, 0-9, -; at most 63)"
    ),
    "key": PathParameter(
        "chalicelib.domain.manifest:CONFIG_KEY",
        "a config var name: A-Z, 0-9 and _, not starting with a digit; at most 128",
    ),
    "channel": PathParameter("chalicelib.domain.alerts:CHANNEL_PATH", "an alert channel id: a ULID, or owners"),
}


@cache
def path_pattern(name: str) -> re.Pattern[str] | None:
    declared = PATH_PARAMETERS.get(name)
    if declared is None:
        return None
    module, _, attribute = declared.pattern.partition(":")
    pattern: re.Pattern[str] = getattr(importlib.import_module(module), attribute)
    return pattern


def check_path(params: dict[str, str]) -> None:
    """422 for a path parameter that does not match its declared pattern."""
    for name, value in params.items():
        pattern = path_pattern(name)
        if pattern is not None and not pattern.fullmatch(value):
            what = PATH_PARAMETERS[name].what
            raise ValidationError(
                f"{value!r} is not {what}", {"fields": [{"field": name, "message": f"must be {what}"}]}
            )


Scope = Literal["read", "deploy", "billing", "admin"]
Role = Literal["viewer", "member", "admin", "owner", "platform_admin", "ingest"]  # ingest: a region's ingest token only


@dataclass(frozen=True)
class Auth:
    """What a route needs from its caller: a token with ``scope`` and, in the route's namespace,
    at least ``role``. ``None`` on a route means it is public."""

    scope: Scope | None = None
    role: Role | None = None


@dataclass(frozen=True)
class RouteSpec:
    path: str
    method: str
    operation_id: str
    summary: str
    tag: str
    request: ModelRef | None
    response: ModelRef | None
    status: int
    auth: Auth | None
    errors: tuple[type[PlatformError], ...]
    query: dict[str, str] = field(default_factory=dict)  # name -> description
    response_content_type: str = "application/json"
    # A body the route checks itself (``parse(decoded body)``, decoded with exact decimals) instead of
    # validating it against ``request``, which still documents it.
    parse: Callable[[Any], Any] | None = None
    # Other success statuses the route answers with the same body (a 202 route that answers 200 when the
    # work was done already), documented beside ``status``.
    also: tuple[int, ...] = ()

    @property
    def path_params(self) -> list[str]:
        return re.findall(r"{(\w+)}", self.path)

    @property
    def request_model(self) -> type[BaseModel] | None:
        return resolve(self.request)

    @property
    def response_model(self) -> type[BaseModel] | None:
        return resolve(self.response)


@dataclass
class Call:
    """What a view gets: the Chalice request, the validated body, the path parameters, and (on routes
    that need auth) the caller and their access to the route's namespace."""

    request: Any
    body: Any
    params: dict[str, str]
    principal: Any = None  # chalicelib.domain.model.Principal
    access: Any = None  # chalicelib.domain.services.auth.Access, on /v1/namespaces/{ns}/... routes
    audit_namespace: str | None = None  # where the audit entry of a state-changing request goes
    audit_target: str | None = None
    idempotency_key: str | None = None  # set when this request owns an Idempotency-Key's first run

    def header(self, name: str) -> str | None:
        value = (self.request.headers or {}).get(name.lower())
        return None if value is None else str(value)

    def time_param(self, name: str) -> datetime | None:
        """An ISO-8601 query parameter with a time zone (``Z`` accepted), or None; 422 when malformed."""
        raw = self.query.get(name)
        if not raw:
            return None
        try:
            value = datetime.fromisoformat(raw.replace("Z", "+00:00"))
        except ValueError as e:
            raise ValidationError(
                f"{name} must be an ISO-8601 time", {"fields": [{"field": name, "message": str(e)}]}
            ) from e
        if value.tzinfo is None:
            raise ValidationError(f"{name} needs a time zone", {"fields": [{"field": name, "message": "add Z"}]})
        return value

    def int_param(self, name: str, default: int, low: int, high: int) -> int:
        """A whole-number query parameter, clamped to ``[low, high]``; absent or empty is ``default``; 422
        when not a number."""
        raw = self.query.get(name)
        if not raw:
            return default
        try:
            return max(low, min(int(raw), high))
        except ValueError as e:
            raise ValidationError(f"{name} must be a number", {"fields": [{"field": name, "message": str(e)}]}) from e

    @property
    def path(self) -> str:
        """The path asked for (``request.path`` is the route's template)."""
        return str((self.request.context or {}).get("path") or self.request.path)

    @property
    def source_ip(self) -> str | None:
        identity = (self.request.context or {}).get("identity") or {}
        return identity.get("sourceIp")

    @property
    def query(self) -> dict[str, str]:
        return dict(self.request.query_params or {})

    @property
    def request_id(self) -> str:
        return request_id_of(self.request)


View = Callable[[Call], Any]


Guard = Callable[[RouteSpec, Call], None]
After = Callable[[RouteSpec, Call, int], None]


class RouteRegistry:
    """``guard`` runs before every view (authentication and authorisation: chalicelib/api/security.py
    installs it); ``after`` runs after every view with the answer's status (the audit log)."""

    def __init__(self, stage: str | None = None) -> None:
        self.specs: list[RouteSpec] = []
        self.guard: Guard | None = None
        self.after: After | None = None
        # Idempotency-Key: ``replay`` may answer a retried request from its first answer; ``remember`` keeps it.
        self.replay: Callable[[RouteSpec, Call], Response | None] | None = None
        self.remember: Callable[[RouteSpec, Call, Response], None] | None = None
        self.stage = stage

    def routes(self, bp: Blueprint, **shared: Any) -> Callable[..., Callable[[View], View]]:
        """``route`` for the routes of ``bp``, with what they share (``tag``, ``auth``, ...) said once;
        a route may still give any of it otherwise."""

        def route(path: str, method: str, **declared: Any) -> Callable[[View], View]:
            return self.route(bp, path, method, **{**shared, **declared})

        return route

    def route(
        self,
        bp: Blueprint,
        path: str,
        method: str,
        *,
        summary: str,
        tag: str,
        request: ModelRef | None = None,
        response: ModelRef | None = None,
        status: int = 200,
        auth: Auth | None = None,
        errors: tuple[type[PlatformError], ...] = (),
        query: dict[str, str] | None = None,
        response_content_type: str = "application/json",
        stages: tuple[str, ...] | None = None,
        parse: Callable[[Any], Any] | None = None,
        also: tuple[int, ...] = (),
    ) -> Callable[[View], View]:
        def decorator(view: View) -> View:
            if stages is not None and self.stage not in stages:
                return view  # not part of this stage's API: neither served nor documented
            spec = RouteSpec(
                path=path,
                method=method.upper(),
                operation_id=view.__name__,
                summary=summary,
                tag=tag,
                request=request,
                response=response,
                status=status,
                auth=auth,
                errors=errors,
                query=query or {},
                response_content_type=response_content_type,
                parse=parse,
                also=also,
            )
            self.specs.append(spec)

            def chalice_view(**params: str) -> Response:
                # Chalice turns any exception a view raises into its own 500, so errors are mapped here.
                req = bp.current_request
                call = Call(req, None, params)
                replayed = None
                try:
                    data = decode_body(req, exact_numbers=spec.parse is not None) if spec.request is not None else None
                    if self.guard is not None:
                        self.guard(spec, call)  # first: a namespace the caller cannot see is 404, whatever the path
                    check_path(params)
                    if spec.parse is not None:
                        call.body = spec.parse(data)
                    elif spec.request is not None:
                        call.body = validate_body(data, spec.request_model)
                    replayed = self.replay(spec, call) if self.replay is not None else None
                    response = replayed if replayed is not None else to_response(view(call), spec)
                except PlatformError as e:
                    response = error_response(e)
                except Exception:
                    get_logger().exception("unhandled error", extra={"operation": spec.operation_id})
                    response = internal_error_response(request_id_of(req))
                if self.remember is not None and replayed is None and call.body is not None:
                    try:
                        self.remember(spec, call, response)
                    except Exception:
                        get_logger().exception("idempotency record failed", extra={"operation": spec.operation_id})
                if self.after is not None and replayed is None:
                    try:
                        self.after(spec, call, response.status_code)
                    except Exception:  # the audit log failing never fails the request it records
                        get_logger().exception("after-request hook failed", extra={"operation": spec.operation_id})
                return response

            chalice_view.__name__ = view.__name__
            bp.route(path, methods=[spec.method], content_types=["*/*"])(chalice_view)
            return view

        return decorator


def decode_body(request: Any, *, exact_numbers: bool = False) -> Any:
    """The request's JSON body (``{}`` when there is none): 413, 415 or 400 ``invalid_json`` if it cannot be read.
    ``exact_numbers``: every number a ``Decimal`` (see ``parse_json``), for routes with a ``parse`` hook."""
    from chalicelib.domain.json_text import parse_json

    content_type = (request.headers.get("content-type") or "").split(";")[0].strip().lower()
    raw: bytes = request.raw_body or b""
    check_body_size(len(raw))
    if raw and content_type != "application/json":
        raise UnsupportedMediaTypeError("send the body as application/json", {"content_type": content_type or None})
    return parse_json(raw, exact_numbers=exact_numbers) if raw else {}


def validate_body(data: Any, model: type[BaseModel] | None) -> BaseModel:
    """The decoded body as the route's model: 422 naming each failing field."""
    from pydantic import ValidationError as PydanticValidationError

    assert model is not None
    try:
        return model.model_validate(data)
    except PydanticValidationError as e:
        raise ValidationError("the body is not valid", {"fields": _field_errors(e)}) from e


def _field_errors(e: PydanticValidationError) -> list[dict[str, str]]:
    out = []
    for err in e.errors(include_url=False, include_input=False):
        out.append(
            {"field": ".".join(str(p) for p in err["loc"]) or "(body)", "message": err["msg"], "type": err["type"]}
        )
    return out


def to_response(result: Any, spec: RouteSpec) -> Response:
    if isinstance(result, Response):
        return result
    model = spec.response_model
    if model is not None and not isinstance(result, model):
        result = model.model_validate(result)  # the answer keeps the documented shape
    if hasattr(result, "model_dump"):
        body: Any = result.model_dump(mode="json")
    else:
        body = result
    return Response(
        body=json.dumps(body) if spec.response_content_type == "application/json" else body,
        status_code=spec.status,
        headers={"Content-Type": spec.response_content_type},
    )


registry = RouteRegistry(stage=os.environ.get("PLATFORM_STAGE", "local"))
