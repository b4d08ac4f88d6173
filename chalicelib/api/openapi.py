"""The OpenAPI 3.1 document, generated from the route registry."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from chalicelib.api import idempotency
from chalicelib.api.errors import status_for
from chalicelib.api.registry import RouteSpec, path_pattern
from chalicelib.domain.errors import (
    BadRequestError,
    ConflictError,
    ForbiddenError,
    NotFoundError,
    PayloadTooLargeError,
    PlatformError,
    UnauthenticatedError,
    UnsupportedMediaTypeError,
    ValidationError,
)

ERROR_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["code", "message", "details"],
            "properties": {
                "code": {"type": "string", "description": "stable, machine-readable"},
                "message": {"type": "string", "description": "for people"},
                "details": {"type": "object", "description": "what failed, e.g. the failing fields"},
            },
        }
    },
}

DESCRIPTIONS = {
    400: "Malformed request (`invalid_json`: the body is not JSON)",
    401: "No valid token",
    403: "The token lacks the scope or role this route needs",
    404: "Not found, or not visible to the caller",
    405: "Method not allowed",
    409: "Conflicts with the current state",
    413: "Body over 1 MiB",
    415: "Body not sent as application/json",
    422: "Body failed validation; `details.fields` names the failing fields",
    429: "Rate limited",
    500: "Internal error",
    503: "A dependency is down; `details` names it",
}


def _schema_ref(model: type[BaseModel], components: dict[str, Any]) -> dict[str, str]:
    schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
    for name, sub in schema.pop("$defs", {}).items():
        _component(components, name, sub)
    _component(components, model.__name__, schema)
    return {"$ref": f"#/components/schemas/{model.__name__}"}


def _component(components: dict[str, Any], name: str, schema: dict[str, Any]) -> None:
    """Components are named by their model's class name: two different models of one name would make
    one route's answers be checked against the other's schema."""
    if components.get(name, schema) != schema:
        raise ValueError(f"two different models are named {name}: rename one")
    components[name] = schema


def _error_statuses(spec: RouteSpec) -> set[int]:
    """What a route declares, and what the registry's rules add to every route they apply to."""
    errors: list[type[PlatformError]] = list(spec.errors)
    if spec.request_model is not None:  # the body: too large, not JSON, unreadable JSON, not the model
        errors += [BadRequestError, PayloadTooLargeError, UnsupportedMediaTypeError, ValidationError]
    if spec.auth is not None:  # no valid token; too little scope or role (or a session without X-Requested-With)
        errors += [UnauthenticatedError, ForbiddenError]
    if "ns" in spec.path_params:  # a namespace the caller cannot see
        errors += [NotFoundError]
    if any(path_pattern(name) is not None for name in spec.path_params):  # a path parameter off its pattern
        errors += [ValidationError]
    if idempotency.applies(spec, "declared"):  # Idempotency-Key: another body (422), the first still running (409)
        errors += [ValidationError, ConflictError]
    statuses = {status_for(cls) for cls in errors}
    return statuses | {500}


def _path_parameter(name: str) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "string"}
    pattern = path_pattern(name)
    if pattern is not None:
        schema["pattern"] = pattern.pattern
    return {"name": name, "in": "path", "required": True, "schema": schema}


def build_document(specs: list[RouteSpec], *, version: str, title: str = "Micro as a Service API") -> dict[str, Any]:
    components: dict[str, Any] = {"Error": ERROR_SCHEMA}
    paths: dict[str, Any] = {}
    for spec in sorted(specs, key=lambda s: (s.path, s.method)):
        op: dict[str, Any] = {
            "operationId": spec.operation_id,
            "summary": spec.summary,
            "tags": [spec.tag],
            "responses": {},
        }
        params = [_path_parameter(n) for n in spec.path_params] + [
            {"name": n, "in": "query", "required": False, "schema": {"type": "string"}, "description": d}
            for n, d in spec.query.items()
        ]
        if idempotency.applies(spec, "declared"):
            params.append(
                {
                    "name": "Idempotency-Key",
                    "in": "header",
                    "required": False,
                    "schema": {"type": "string", "maxLength": idempotency.MAX_KEY_LENGTH},
                    "description": "a retry with the same key and body gets the first answer again (24 hours); "
                    "an empty key is no key",
                }
            )
        if params:
            op["parameters"] = params
        if spec.request_model is not None:
            # A route reads a missing body as {} (registry.decode_body): the body is required only when {}
            # is not a valid one, i.e. when the model has a required field.
            op["requestBody"] = {
                "required": any(f.is_required() for f in spec.request_model.model_fields.values()),
                "content": {"application/json": {"schema": _schema_ref(spec.request_model, components)}},
            }
        ok: dict[str, Any] = {"description": "Success"}
        if spec.response_model is not None:
            ok["content"] = {spec.response_content_type: {"schema": _schema_ref(spec.response_model, components)}}
        elif spec.response_content_type != "application/json":
            ok["content"] = {spec.response_content_type: {"schema": {"type": "string"}}}
        op["responses"][str(spec.status)] = ok
        for status in spec.also:
            op["responses"][str(status)] = {**ok, "description": DESCRIPTIONS.get(status, "Success")}
        for status in sorted(_error_statuses(spec)):
            op["responses"][str(status)] = {
                "description": DESCRIPTIONS.get(status, "Error"),
                "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
            }
        if spec.auth is not None:
            op["security"] = [{"bearerAuth": []}]
            op["x-platform-auth"] = {"scope": spec.auth.scope, "role": spec.auth.role}
        paths.setdefault(spec.path, {})[spec.method.lower()] = op
    return {
        "openapi": "3.1.0",
        "info": {"title": title, "version": version},
        "servers": [{"url": "/"}],
        "paths": paths,
        "components": {
            "schemas": components,
            "securitySchemes": {"bearerAuth": {"type": "http", "scheme": "bearer"}},
        },
    }
