"""Idempotency-Key through the app (Chalice's test client, moto in-process): the same JSON written
another way is the same request; a first run still going answers 409 to a retry; a first run cut off
(its function timed out) stops blocking retries when its function's time is certainly over, not after
a fixed 5 minutes."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest

from chalicelib.api.idempotency import fingerprint
from chalicelib.domain.model import Account, Member, Namespace

NS = "acme-backend"
PATH = f"/v1/namespaces/{NS}/services/hello/auto-deploy"


class CutOff(BaseException):
    """The function stopping mid-request (a Lambda timeout): nothing after it runs, not even the
    answer's record."""


@pytest.fixture
def api(container: Any, client: Any, clock: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.setenv("PLATFORM_LOCAL_KEY", "a local key for the config vars")
    from chalicelib.domain.services.deploys import Service

    s = container.stores
    s.namespaces.create(Namespace(NS, "acme", 1, "backend", 2, "local", "team", "active", clock.now(), "user:ada"), [])
    s.members.apply(NS, [Member(NS, 1, "ada", "owner", "team")], [], [])
    container.deploys._store.save_service(Service(NS, "hello"))
    token = container.auth.mint_login_token(Account(1, "ada"))[0]

    def call(body: str, key: str = "retry-1") -> Any:
        headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json", "Idempotency-Key": key}
        return client.http.request("POST", PATH, headers=headers, body=body)

    return call


def test_the_same_json_in_another_key_order_or_spacing_is_the_same_request() -> None:
    assert fingerprint(b'{"source": "https://x/y.git", "ref": "main"}') == fingerprint(
        '{"ref":"main",\n "source":"https://x/y.git"}'
    )
    assert fingerprint(b'{"ref": "main"}') != fingerprint(b'{"ref": "dev"}')


def test_a_retry_whose_body_is_spaced_otherwise_is_answered_from_the_first(api: Any) -> None:
    first = api('{"enabled": false}')
    assert first.status_code == 200, first.body
    again = api('{ "enabled" :false }')
    assert again.status_code == 200, again.body
    assert again.headers.get("Idempotent-Replayed") == "true"
    assert json.loads(again.body) == json.loads(first.body)
    other = api('{"enabled": true}')
    assert other.status_code == 422 and json.loads(other.body)["error"]["details"] == {"header": "Idempotency-Key"}


def test_a_retry_while_the_first_runs_is_409_and_runs_once_the_first_is_certainly_over(
    api: Any, container: Any, clock: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    def cut_off(*args: Any) -> Any:
        raise CutOff

    with monkeypatch.context() as m:
        m.setattr(container.deploys, "set_auto_deploy", cut_off)
        with pytest.raises(CutOff):
            api('{"enabled": false}')
    # the first run may still be going: its function has up to 30 s (lambda_timeout) left
    clock.advance(timedelta(seconds=20))
    busy = api('{"enabled": false}')
    assert busy.status_code == 409, busy.body
    assert json.loads(busy.body)["error"]["code"] == "conflict"
    # past the function's time the first run is certainly over: the retry runs (no 5-minute wait)
    clock.advance(timedelta(seconds=12))
    retried = api('{"enabled": false}')
    assert retried.status_code == 200, retried.body
    assert retried.headers.get("Idempotent-Replayed") is None
    assert json.loads(retried.body)["auto_deploy"] is False
    assert api('{"enabled": false}').headers.get("Idempotent-Replayed") == "true"
