"""GET /v1/health and GET /openapi.json on the real app."""

from __future__ import annotations

import json
from typing import Any

import pytest
from openapi_spec_validator import validate

from chalicelib import __version__


def test_health_answers_200_with_the_version_and_the_table_check(client: Any) -> None:
    r = client.http.get("/v1/health")
    assert r.status_code == 200
    body = json.loads(r.body)
    assert body["status"] == "ok"
    assert body["version"] == __version__
    assert body["checks"]["table"]["status"] == "ok"


def test_health_answers_503_naming_the_table_when_it_is_gone(client: Any, aws: dict[str, Any]) -> None:
    aws["dynamodb"].delete_table(TableName="platform-test")
    r = client.http.get("/v1/health")
    assert r.status_code == 503
    err = json.loads(r.body)["error"]
    assert err["code"] == "dependency_unavailable"
    assert err["details"]["down"] == ["table"]
    assert "table" in err["message"]


def registered_routes() -> set[tuple[str, str]]:
    from app import app

    return {(path, method) for path, methods in app.routes.items() for method in methods}


def page_routes() -> set[tuple[str, str]]:
    from chalicelib.pages.routes import routes

    return {(path, method) for method, path in routes()}


def test_the_openapi_document_lists_exactly_the_routes_the_app_registers(client: Any) -> None:
    """Every route of the app but the dashboard's pages, which are not API."""
    doc = json.loads(client.http.get("/openapi.json").body)
    documented = {(path, method.upper()) for path, ops in doc["paths"].items() for method in ops}
    assert documented == registered_routes() - page_routes()


def test_the_dashboards_pages_are_apart_from_the_api() -> None:
    """No page is under /v1 or is an API route, and each page route is one the app serves."""
    from chalicelib.api.registry import registry

    pages = page_routes()
    assert pages and pages <= registered_routes()
    assert not {(p, m) for p, m in pages if p.startswith("/v1") or p == "/openapi.json"}
    assert not pages & {(s.path, s.method) for s in registry.specs}


def test_the_openapi_document_is_valid_openapi_3_1(client: Any) -> None:
    doc = json.loads(client.http.get("/openapi.json").body)
    assert doc["openapi"] == "3.1.0"
    validate(doc)


def test_every_operation_documents_the_error_format(client: Any) -> None:
    doc = json.loads(client.http.get("/openapi.json").body)
    for path, ops in doc["paths"].items():
        for method, op in ops.items():
            assert "500" in op["responses"], (path, method)
            ref = op["responses"]["500"]["content"]["application/json"]["schema"]["$ref"]
            assert ref == "#/components/schemas/Error"
    assert doc["components"]["schemas"]["Error"]["required"] == ["error"]
    health = doc["paths"]["/v1/health"]["get"]["responses"]
    assert "503" in health
    assert "HealthOut" in health["200"]["content"]["application/json"]["schema"]["$ref"]


def test_the_document_declares_request_bodies_and_their_errors() -> None:
    from pydantic import BaseModel

    from chalicelib.api.openapi import build_document
    from chalicelib.api.registry import Auth, RouteSpec
    from chalicelib.domain.errors import ConflictError

    class ThingIn(BaseModel):
        name: str

    spec = RouteSpec(
        path="/v1/things/{thing}",
        method="PUT",
        operation_id="put_thing",
        summary="s",
        tag="t",
        request=ThingIn,
        response=None,
        status=200,
        auth=Auth(scope="deploy", role="member"),
        errors=(ConflictError,),
    )
    doc = build_document([spec], version="1")
    op = doc["paths"]["/v1/things/{thing}"]["put"]
    assert set(op["responses"]) == {"200", "400", "401", "403", "409", "413", "415", "422", "500"}
    assert op["requestBody"]["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/ThingIn"}
    assert op["parameters"][0]["name"] == "thing"
    assert op["x-platform-auth"] == {"scope": "deploy", "role": "member"}
    validate(doc)


def test_the_document_gives_every_answer_the_registry_rules_make(client: Any) -> None:
    """Derived, not listed per route: 401 and 403 wherever a token is needed, 404 wherever a namespace
    is named (one the caller cannot see), 422 and the pattern wherever a path parameter has one, and
    409/422 with the Idempotency-Key header where a retried POST is answered from the first."""
    doc = json.loads(client.http.get("/openapi.json").body)
    authenticated = 0
    for path, ops in doc["paths"].items():
        for method, op in ops.items():
            where = (method, path)
            if "security" in op:
                authenticated += 1
                assert {"401", "403"} <= set(op["responses"]), where
            if "{ns}" in path:
                assert "404" in op["responses"], where
            for param in op.get("parameters", []):
                if param["in"] == "path" and param["name"] in ("svc", "key"):
                    assert param["schema"]["pattern"].startswith("^"), where
                    assert "422" in op["responses"], where
            if any(p["name"] == "Idempotency-Key" for p in op.get("parameters", [])):
                assert {"409", "422"} <= set(op["responses"]), where
    assert authenticated >= 29
    link = doc["paths"]["/v1/namespaces/{ns}/repos"]["post"]["responses"]
    assert {"403", "404", "422"} <= set(link)
    deploy = doc["paths"]["/v1/namespaces/{ns}/services/{svc}/deployments"]["post"]
    assert [p["name"] for p in deploy["parameters"]] == ["ns", "svc", "Idempotency-Key"]
    assert "Idempotency-Key" not in json.dumps(doc["paths"]["/v1/tokens"]["post"])  # its answer carries a secret


def test_a_path_parameter_off_its_pattern_is_checked_after_authentication(client: Any) -> None:
    """The path's pattern is checked by the registry, after authentication: without a token 401."""
    r = client.http.get("/v1/namespaces/acme-x/services/Not_A_Label")
    assert r.status_code == 401


def test_every_request_model_is_strict_as_json_is() -> None:
    """``{"enabled": 0}`` was taken as false: no request model coerces a type (booleans, numbers)."""
    from chalicelib.api.registry import registry

    def walk(model: Any) -> Any:
        yield model
        for field in model.model_fields.values():
            for arg in [field.annotation, *getattr(field.annotation, "__args__", ())]:
                for inner in [arg, *getattr(arg, "__args__", ())]:
                    if isinstance(inner, type) and hasattr(inner, "model_fields"):
                        yield from walk(inner)

    models = {m for spec in registry.specs if spec.request_model is not None for m in walk(spec.request_model)}
    assert len(models) >= 12
    for model in models:
        assert model.model_config.get("strict") is True, model.__name__


@pytest.mark.parametrize(
    ("model", "body", "field"),
    [
        ("services:AutoDeployIn", {"enabled": 0}, "enabled"),
        ("services:AutoDeployIn", {"enabled": "true"}, "enabled"),
        ("services:ConfigValueIn", {"value": "v", "secret": 1}, "secret"),
        ("services:ConfigIn", {"vars": {"A": {"value": "v", "secret": "yes"}}}, "vars.A.secret"),
        ("repos:RepoLinkIn", {"repo": "acme/hello", "auto_deploy": 1}, "auto_deploy"),
        ("repos:RepoPatchIn", {"auto_deploy": 0}, "auto_deploy"),
        (
            "accounts:TokenIn",
            {"name": "n", "namespace": "acme-x", "scopes": ["read"], "expires_in": "60"},
            "expires_in",
        ),
    ],
)
def test_a_boolean_or_number_of_another_json_type_is_422(model: str, body: dict[str, Any], field: str) -> None:
    from chalicelib.api.registry import resolve, validate_body
    from chalicelib.domain.errors import ValidationError

    with pytest.raises(ValidationError) as raised:
        validate_body(body, resolve(f"chalicelib.api.schemas.{model}"))
    assert [f["field"] for f in raised.value.details["fields"]] == [field]


def test_an_empty_number_parameter_is_taken_as_absent() -> None:
    from types import SimpleNamespace

    from chalicelib.api.registry import Call
    from chalicelib.domain.errors import ValidationError

    def call(query: dict[str, str]) -> Call:
        return Call(SimpleNamespace(query_params=query), None, {})

    assert call({"limit": ""}).int_param("limit", 100, 1, 500) == 100
    assert call({}).int_param("limit", 100, 1, 500) == 100
    assert call({"limit": "900"}).int_param("limit", 100, 1, 500) == 500
    with pytest.raises(ValidationError):
        call({"limit": "ten"}).int_param("limit", 100, 1, 500)


def test_two_different_models_of_one_name_cannot_share_a_component() -> None:
    """Components are named by class: a second, different `TierOut` would have made the billing route's
    answers be checked against the plans' schema (schemathesis found it)."""
    from pydantic import BaseModel

    from chalicelib.api.openapi import _schema_ref

    first = type("TierOut", (BaseModel,), {"__annotations__": {"up_to": str}})
    second = type("TierOut", (BaseModel,), {"__annotations__": {"amount": int}})
    components: dict[str, Any] = {}
    _schema_ref(first, components)
    _schema_ref(first, components)  # the same model again is fine
    with pytest.raises(ValueError, match="TierOut"):
        _schema_ref(second, components)
