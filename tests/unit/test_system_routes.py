"""GET /v1/health and GET /openapi.json on the real app."""

from __future__ import annotations

import json
from typing import Any

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


def test_the_openapi_document_lists_exactly_the_routes_the_app_registers(client: Any) -> None:
    doc = json.loads(client.http.get("/openapi.json").body)
    documented = {(path, method.upper()) for path, ops in doc["paths"].items() for method in ops}
    assert documented == registered_routes()


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
    assert set(op["responses"]) == {"200", "400", "401", "409", "413", "415", "422", "500"}
    assert op["requestBody"]["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/ThingIn"}
    assert op["parameters"][0]["name"] == "thing"
    assert op["x-platform-auth"] == {"scope": "deploy", "role": "member"}
    validate(doc)
