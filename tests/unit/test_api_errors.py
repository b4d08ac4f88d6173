"""Every 4xx and 5xx comes out as {"error": {"code", "message", "details"}}, whoever answers it."""

from __future__ import annotations

import json
from typing import Any

import pytest
from chalice import Blueprint, Chalice
from chalice.test import Client
from pydantic import BaseModel, Field

from chalicelib.api.errors import status_for
from chalicelib.api.middleware import http_middleware
from chalicelib.api.registry import MAX_BODY_BYTES, Call, RouteRegistry
from chalicelib.domain import errors as e


class WidgetIn(BaseModel):
    name: str = Field(min_length=1, max_length=20)
    size: int = Field(ge=1)


class WidgetOut(BaseModel):
    id: str
    name: str
    size: int


def make_app() -> Chalice:
    """A small app built on the same registry and middleware as the real one."""
    registry = RouteRegistry()
    bp = Blueprint(__name__)

    @registry.route(bp, "/widgets", "POST", tag="t", summary="create", request=WidgetIn, response=WidgetOut, status=201)
    def create_widget(call: Call) -> WidgetOut:
        if call.body.name == "taken":
            raise e.ConflictError("widget 'taken' exists", {"name": "taken"})
        return WidgetOut(id="w1", **call.body.model_dump())

    @registry.route(bp, "/widgets/{widget_id}", "GET", tag="t", summary="get")
    def get_widget(call: Call) -> dict[str, Any]:
        if call.params["widget_id"] == "boom":
            raise RuntimeError("database password is hunter2")
        raise e.NotFoundError("no such widget", {"id": call.params["widget_id"]})

    app = Chalice(app_name="widgets")
    app.register_middleware(http_middleware, "http")
    app.register_blueprint(bp)
    return app


@pytest.fixture
def widgets() -> Any:
    with Client(make_app()) as c:
        yield c


def post(client: Any, body: bytes | str, content_type: str = "application/json") -> Any:
    return client.http.post("/widgets", body=body, headers={"Content-Type": content_type})


def error_of(response: Any) -> dict[str, Any]:
    body = json.loads(response.body)
    assert set(body) == {"error"}, body
    assert set(body["error"]) == {"code", "message", "details"}, body
    return dict(body["error"])


def test_a_valid_body_reaches_the_view_and_answers_the_declared_status(widgets: Any) -> None:
    r = post(widgets, json.dumps({"name": "a", "size": 2}))
    assert r.status_code == 201
    assert json.loads(r.body) == {"id": "w1", "name": "a", "size": 2}


def test_malformed_json_is_400_invalid_json(widgets: Any) -> None:
    r = post(widgets, '{"name": "a",')
    assert r.status_code == 400
    assert error_of(r)["code"] == "invalid_json"


def test_a_body_that_fails_its_model_is_422_naming_each_failing_field(widgets: Any) -> None:
    r = post(widgets, json.dumps({"name": "", "size": 0}))
    assert r.status_code == 422
    err = error_of(r)
    assert err["code"] == "validation_failed"
    assert sorted(f["field"] for f in err["details"]["fields"]) == ["name", "size"]


def test_a_missing_field_is_named(widgets: Any) -> None:
    r = post(widgets, json.dumps({"name": "x"}))
    assert r.status_code == 422
    assert [f["field"] for f in error_of(r)["details"]["fields"]] == ["size"]


def test_a_wrong_content_type_is_415(widgets: Any) -> None:
    r = post(widgets, "name=a&size=2", content_type="application/x-www-form-urlencoded")
    assert r.status_code == 415
    assert error_of(r)["code"] == "unsupported_media_type"


def test_a_body_over_one_mib_is_413(widgets: Any) -> None:
    big = json.dumps({"name": "a", "size": 1, "pad": "x" * MAX_BODY_BYTES})
    r = post(widgets, big)
    assert r.status_code == 413
    assert error_of(r)["details"]["limit"] == MAX_BODY_BYTES


def test_a_wrong_method_is_405_in_our_format_with_the_allowed_methods(widgets: Any) -> None:
    r = widgets.http.delete("/widgets")
    assert r.status_code == 405
    err = error_of(r)
    assert err["code"] == "method_not_allowed"
    assert err["details"]["allowed_methods"] == ["POST"]


def test_domain_errors_map_to_their_status(widgets: Any) -> None:
    r = post(widgets, json.dumps({"name": "taken", "size": 1}))
    assert r.status_code == 409
    assert error_of(r) == {"code": "conflict", "message": "widget 'taken' exists", "details": {"name": "taken"}}
    r = widgets.http.get("/widgets/nope")
    assert r.status_code == 404
    assert error_of(r)["details"] == {"id": "nope"}


def test_an_unhandled_error_is_500_without_its_message(widgets: Any) -> None:
    r = widgets.http.get("/widgets/boom")
    assert r.status_code == 500
    err = error_of(r)
    assert err["code"] == "internal_error"
    assert "hunter2" not in r.body.decode()
    assert err["details"]["request_id"]


def test_every_answer_carries_a_request_id(widgets: Any) -> None:
    r = widgets.http.get("/widgets/nope")
    assert r.headers["X-Request-Id"]


@pytest.mark.parametrize(
    ("error", "status"),
    [
        (e.BadRequestError, 400),
        (e.UnauthenticatedError, 401),
        (e.ForbiddenError, 403),
        (e.NotFoundError, 404),
        (e.ConflictError, 409),
        (e.ConditionFailedError, 409),
        (e.PayloadTooLargeError, 413),
        (e.UnsupportedMediaTypeError, 415),
        (e.ValidationError, 422),
        (e.RateLimitedError, 429),
        (e.DependencyUnavailableError, 503),
        (e.PlatformError, 500),
    ],
)
def test_status_mapping(error: type[e.PlatformError], status: int) -> None:
    assert status_for(error("x")) == status


def test_unauthenticated_answers_carry_www_authenticate() -> None:
    from chalicelib.api.errors import error_response

    r = error_response(e.UnauthenticatedError("token expired"))
    assert r.status_code == 401
    assert r.headers["WWW-Authenticate"].startswith("Bearer")


HOSTILE_JSON = {
    "nested-100000-deep": "[" * 100_000 + "]" * 100_000,
    "nested-33-deep": '{"name": ' + "[" * 32 + "]" * 32 + "}",
    "a-5000-digit-number": '{"name": "a", "size": ' + "9" * 5000 + "}",
    "a-lone-surrogate": '{"name": "\\ud800", "size": 1}',
    "not-utf-8": b'{"name": "\xff", "size": 1}',
}


@pytest.mark.parametrize("body", list(HOSTILE_JSON.values()), ids=list(HOSTILE_JSON))
def test_json_nobody_can_read_is_400_invalid_json_on_every_route_that_takes_a_body(client: Any, body: Any) -> None:
    """The real app, without a token: deep nesting (RecursionError) and huge numbers (int's digit
    limit) were 500s; they are refused before the caller is even looked up."""
    from chalicelib.api.registry import registry

    routes = [s for s in registry.specs if s.request is not None]
    assert len(routes) >= 10
    if body == HOSTILE_JSON["a-5000-digit-number"]:
        # A route that reads every number exactly (usage events) takes a long number as a Decimal and
        # rejects the event that carries it by its index (tests/functional/test_usage_api.py).
        routes = [s for s in routes if s.parse is None]
    for spec in routes:
        path = spec.path.replace("{ns}", "acme-x").replace("{svc}", "web").replace("{key}", "K")
        path = path.replace("{repo_id}", "1")
        r = client.http.request(spec.method, path, body=body, headers={"Content-Type": "application/json"})
        assert r.status_code == 400, (spec.method, spec.path, r.body[:200])
        err = error_of(r)
        assert err["code"] == "invalid_json" and err["message"].startswith("the body "), err


def test_nesting_is_limited_to_32_levels_whatever_the_stack() -> None:
    from chalicelib.domain.json_text import MAX_DEPTH, parse_json

    assert MAX_DEPTH == 32
    deepest: Any = []
    for _ in range(31):
        deepest = [deepest]
    assert parse_json("[" * 32 + "]" * 32) == deepest
    with pytest.raises(e.BadRequestError) as raised:
        parse_json('{"a": ' + "[" * 32 + "]" * 32 + "}")
    assert raised.value.code == "invalid_json" and raised.value.details == {"max_depth": 32}
    assert parse_json('{"ok": "caf\\u00e9 \\ud83d\\ude00"}') == {"ok": "café 😀"}  # a surrogate pair is fine
