"""The MicroRuntime adapter against the micro runtime stand-in: the exact wire shape of every
RuntimePort call, error mapping, retries and log parsing."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import pytest

from chalicelib.adapters.runtime.micro import MicroRuntime, parse_log_records, platform_status
from chalicelib.domain.errors import (
    ConflictError,
    DependencyUnavailableError,
    NotFoundError,
    ValidationError,
)
from chalicelib.domain.ports import ResourceQuota, ServiceSpec
from localcloud.standins.micro import MicroRuntimeStandIn

NS = "acme"


@pytest.fixture
def token(secret: Callable[[str], str]) -> str:
    return secret("micro-rt-token-7f3a9c2e51d84b06")


@pytest.fixture
def micro(token: str) -> Iterator[MicroRuntimeStandIn]:
    with MicroRuntimeStandIn(token=token) as stand_in:
        yield stand_in


@pytest.fixture
def runtime(micro: MicroRuntimeStandIn, token: str) -> MicroRuntime:
    return MicroRuntime(micro.url, token, timeout=2, retries=3, backoff=0.01)


@pytest.fixture
def with_ns(micro: MicroRuntimeStandIn, runtime: MicroRuntime) -> MicroRuntime:
    runtime.create_namespace(NS)
    micro.clear()
    return runtime


def spec(name: str = "helloworld", version: str = "v1", **kwargs: Any) -> ServiceSpec:
    return ServiceSpec(
        name=name,
        version=version,
        source=f"github.com/acme/services/{name}@{version}",
        metadata={"owner": "acme", "group": "backend"},
        **kwargs,
    )


def only(micro: MicroRuntimeStandIn, endpoint: str | None = None) -> dict[str, Any]:
    received = micro.received(endpoint)
    assert len(received) == 1, received
    return received[0]


def assert_wire(request: dict[str, Any], endpoint: str, namespace: str, body: dict[str, Any]) -> None:
    assert request["method"] == "POST"
    assert request["path"] == f"/runtime/Runtime/{endpoint}"
    assert request["headers"]["micro-namespace"] == namespace
    assert request["headers"]["content-type"] == "application/json"
    assert "authorization" not in request["headers"]  # recorded without it...
    assert request["authenticated"] is True  # ...but it was "Bearer <token>"
    assert request["body"] == body


def closed_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


# --------------------------------------------------------------------------- namespaces


def test_create_namespace_wire(micro: MicroRuntimeStandIn, runtime: MicroRuntime) -> None:
    runtime.create_namespace(NS)
    assert_wire(
        only(micro),
        "Create",
        NS,
        {"resource": {"namespace": {"name": NS}}, "options": {"namespace": NS}},
    )
    assert NS in micro.state()


def test_create_existing_namespace_is_a_conflict(with_ns: MicroRuntime, micro: MicroRuntimeStandIn) -> None:
    with pytest.raises(ConflictError) as raised:
        with_ns.create_namespace(NS)
    assert raised.value.details["runtime_status"] == 409
    assert len(micro.received()) == 1  # a conflict is not retried


def test_delete_namespace_wire_and_missing(with_ns: MicroRuntime, micro: MicroRuntimeStandIn) -> None:
    with_ns.delete_namespace(NS)
    assert_wire(
        only(micro),
        "Delete",
        NS,
        {"resource": {"namespace": {"name": NS}}, "options": {"namespace": NS}},
    )
    with pytest.raises(NotFoundError):
        with_ns.delete_namespace(NS)


# --------------------------------------------------------------------------- quotas and policies


def test_set_quota_creates_then_updates(with_ns: MicroRuntime, micro: MicroRuntimeStandIn) -> None:
    requests_, limits = ResourceQuota(256, 250, 512), ResourceQuota(1024, 1000, 2048)
    with_ns.set_quota(NS, "default", requests_, limits)
    quota = {
        "name": "default",
        "namespace": NS,
        "requests": {"Memory": 256, "CPU": 250, "EphemeralStorage": 512},
        "limits": {"Memory": 1024, "CPU": 1000, "EphemeralStorage": 2048},
    }
    assert_wire(only(micro), "Create", NS, {"resource": {"resourcequota": quota}, "options": {"namespace": NS}})

    micro.clear()
    with_ns.set_quota(NS, "default", ResourceQuota(512, 500, 512), limits)
    create, update = micro.received()
    updated = dict(quota, requests={"Memory": 512, "CPU": 500, "EphemeralStorage": 512})
    assert_wire(create, "Create", NS, {"resource": {"resourcequota": updated}, "options": {"namespace": NS}})
    assert_wire(update, "Update", NS, {"resource": {"resourcequota": updated}, "options": {"namespace": NS}})
    assert micro.state()[NS]["quotas"]["default"]["requests"] == {"Memory": 512, "CPU": 500, "EphemeralStorage": 512}


def test_delete_quota_wire_and_idempotent(with_ns: MicroRuntime, micro: MicroRuntimeStandIn) -> None:
    with_ns.set_quota(NS, "default", ResourceQuota(1, 1, 1), ResourceQuota(2, 2, 2))
    micro.clear()
    with_ns.delete_quota(NS, "default")
    assert_wire(
        only(micro),
        "Delete",
        NS,
        {"resource": {"resourcequota": {"name": "default", "namespace": NS}}, "options": {"namespace": NS}},
    )
    with_ns.delete_quota(NS, "default")  # gone already: nothing to do, as the in-memory runtime
    assert micro.state()[NS]["quotas"] == {}


def test_network_policy_set_update_delete(with_ns: MicroRuntime, micro: MicroRuntimeStandIn) -> None:
    with_ns.set_network_policy(NS, "ingress", {"owner": NS})
    policy = {"name": "ingress", "namespace": NS, "allowedlabels": {"owner": NS}}
    assert_wire(only(micro), "Create", NS, {"resource": {"networkpolicy": policy}, "options": {"namespace": NS}})

    micro.clear()
    with_ns.set_network_policy(NS, "ingress", {"owner": NS, "tier": "api"})
    assert [r["path"].rsplit("/", 1)[1] for r in micro.received()] == ["Create", "Update"]
    assert micro.state()[NS]["policies"]["ingress"] == {"owner": NS, "tier": "api"}

    micro.clear()
    with_ns.delete_network_policy(NS, "ingress")
    assert_wire(
        only(micro),
        "Delete",
        NS,
        {"resource": {"networkpolicy": {"name": "ingress", "namespace": NS}}, "options": {"namespace": NS}},
    )
    with_ns.delete_network_policy(NS, "ingress")


def test_quota_in_a_missing_namespace_is_not_found(runtime: MicroRuntime) -> None:
    with pytest.raises(NotFoundError):
        runtime.set_quota("nowhere", "default", ResourceQuota(1, 1, 1), ResourceQuota(1, 1, 1))


# --------------------------------------------------------------------------- services


def test_create_service_wire(with_ns: MicroRuntime, micro: MicroRuntimeStandIn) -> None:
    with_ns.create_service(
        NS,
        spec(command=("/app/helloworld", "--debug"), env={"B": "2", "A": "1"}, secrets={"DB_PASSWORD": "s3cr3t"}),
    )
    assert_wire(
        only(micro),
        "Create",
        NS,
        {
            "resource": {
                "service": {
                    "name": "helloworld",
                    "version": "v1",
                    "source": "github.com/acme/services/helloworld@v1",
                    "metadata": {"owner": "acme", "group": "backend"},
                }
            },
            "options": {
                "command": ["/app/helloworld", "--debug"],
                "args": [],
                "env": ["A=1", "B=2"],
                "type": "",
                "image": "",
                "namespace": NS,
                "secrets": {"DB_PASSWORD": "s3cr3t"},
                "entrypoint": "",
            },
        },
    )


def test_create_existing_service_is_a_conflict(with_ns: MicroRuntime, micro: MicroRuntimeStandIn) -> None:
    with_ns.create_service(NS, spec())
    with pytest.raises(ConflictError):
        with_ns.create_service(NS, spec())


def test_micro_500_already_exists_is_a_conflict_not_retried(with_ns: MicroRuntime, micro: MicroRuntimeStandIn) -> None:
    # micro's runtime answers a second service Create with 500 "service already exists"
    micro.fail_next(1, status=500, detail="service helloworld already exists")
    with pytest.raises(ConflictError):
        with_ns.create_service(NS, spec())
    assert len(micro.received()) == 1


def test_create_service_in_missing_namespace_is_not_found(runtime: MicroRuntime) -> None:
    with pytest.raises(NotFoundError):
        runtime.create_service("nowhere", spec())


def test_update_service_wire_and_missing(with_ns: MicroRuntime, micro: MicroRuntimeStandIn) -> None:
    with_ns.create_service(NS, spec())
    micro.clear()
    changed = ServiceSpec("helloworld", "v1", "github.com/acme/services/helloworld@v1.1", {"owner": "acme"})
    with_ns.update_service(NS, changed)
    assert_wire(
        only(micro),
        "Update",
        NS,
        {
            "resource": {
                "service": {
                    "name": "helloworld",
                    "version": "v1",
                    "source": "github.com/acme/services/helloworld@v1.1",
                    "metadata": {"owner": "acme"},
                }
            },
            "options": {"namespace": NS},
        },
    )
    with pytest.raises(NotFoundError):
        with_ns.update_service(NS, spec("absent"))


def test_delete_service_wire_and_missing(with_ns: MicroRuntime, micro: MicroRuntimeStandIn) -> None:
    with_ns.create_service(NS, spec())
    micro.clear()
    with_ns.delete_service(NS, "helloworld", "v1")
    assert_wire(
        only(micro),
        "Delete",
        NS,
        {"resource": {"service": {"name": "helloworld", "version": "v1"}}, "options": {"namespace": NS}},
    )
    with pytest.raises(NotFoundError):
        with_ns.delete_service(NS, "helloworld", "v1")


def test_read_services_wire_and_mapping(with_ns: MicroRuntime, micro: MicroRuntimeStandIn) -> None:
    with_ns.create_service(NS, spec("b-svc"))
    with_ns.create_service(NS, spec("a-svc"))
    micro.clear()
    services = with_ns.read_services(NS)
    assert_wire(
        only(micro),
        "Read",
        NS,
        {"options": {"service": "", "version": "", "type": "", "namespace": NS}},
    )
    assert [(s.name, s.version, s.status) for s in services] == [("a-svc", "v1", "running"), ("b-svc", "v1", "running")]
    assert services[0].source == "github.com/acme/services/a-svc@v1"
    assert services[0].metadata == {"owner": "acme", "group": "backend"}

    micro.clear()
    [one] = with_ns.read_services(NS, "b-svc")
    assert one.name == "b-svc"
    assert only(micro)["body"]["options"]["service"] == "b-svc"


@pytest.mark.parametrize(
    ("micro_status", "expected"),
    [
        (0, "starting"),
        (1, "starting"),
        ("BUILDING", "starting"),
        (3, "starting"),
        (4, "running"),
        ("RUNNING", "running"),
        (5, "stopped"),
        ("STOPPED", "stopped"),
        (7, "error"),
        ("ERROR", "error"),
        ("7", "error"),
    ],
)
def test_service_status_map(
    with_ns: MicroRuntime, micro: MicroRuntimeStandIn, micro_status: int | str, expected: str
) -> None:
    with_ns.create_service(NS, spec())
    micro.set_status(NS, "helloworld", "v1", micro_status)
    [service] = with_ns.read_services(NS, "helloworld")
    assert service.status == expected


def test_status_falls_back_to_metadata_when_omitted() -> None:
    # encoding/json omits a zero status; micro copies the humanised status into the metadata
    assert platform_status(None, {"status": "error"}) == "error"
    assert platform_status(None, {"status": "running"}) == "running"
    assert platform_status(None, {}) == "starting"


def test_read_services_of_missing_namespace_is_not_found(runtime: MicroRuntime) -> None:
    with pytest.raises(NotFoundError):
        runtime.read_services("nowhere")


# --------------------------------------------------------------------------- logs


def test_logs_wire_and_ndjson(with_ns: MicroRuntime, micro: MicroRuntimeStandIn) -> None:
    with_ns.create_service(NS, spec())
    micro.clear()
    records = list(with_ns.logs(NS, "helloworld", tail=50))
    assert_wire(
        only(micro),
        "Logs",
        NS,
        {"service": "helloworld", "version": "", "count": 50, "stream": False, "options": {"namespace": NS}},
    )
    assert len(records) == 3
    assert records[0].message == "Starting helloworld v1"
    assert records[0].metadata == {"service": "helloworld"}
    assert all(r.timestamp.tzinfo is not None for r in records)
    assert records == sorted(records, key=lambda r: r.timestamp)


@pytest.mark.parametrize("fmt", ["ndjson", "array", "object"])
def test_logs_formats_since_and_tail(with_ns: MicroRuntime, micro: MicroRuntimeStandIn, fmt: Any) -> None:
    with_ns.create_service(NS, spec())
    # three start-up records (now), then two at fixed times
    micro.add_log(NS, "helloworld", "old", timestamp=1_700_000_000)
    micro.add_log(NS, "helloworld", "newer", timestamp=4_000_000_000, metadata={"level": "info"})
    micro.logs_format = fmt
    records = list(with_ns.logs(NS, "helloworld", since=datetime.fromtimestamp(1_700_000_001, UTC)))
    if fmt == "object":  # one object: the last record only
        assert [r.message for r in records] == ["newer"]
    else:
        assert "old" not in [r.message for r in records]
        assert records[-1].message == "newer"
        assert len(records) == 4
    assert records[-1].metadata == {"level": "info"}
    assert records[-1].timestamp == datetime.fromtimestamp(4_000_000_000, UTC)

    micro.logs_format = "ndjson"
    assert [r.message for r in with_ns.logs(NS, "helloworld", tail=1)] == ["newer"]


def test_logs_of_missing_service_is_not_found(with_ns: MicroRuntime) -> None:
    with pytest.raises(NotFoundError):
        list(with_ns.logs(NS, "absent"))


def test_parse_log_records_shapes() -> None:
    one = '{"timestamp": 1700000000, "metadata": {"a": "b"}, "message": "hi"}'
    ndjson = one + "\n" + '{"timestamp": "1700000001", "message": "there"}\n'
    array = "[" + one + ', {"timestamp": 1700000002, "message": "x"}]'
    enveloped = '{"result": {"timestamp": 1700000003, "message": "wrapped"}}'
    assert [r.message for r in parse_log_records(one)] == ["hi"]
    assert [r.message for r in parse_log_records(ndjson)] == ["hi", "there"]
    assert [r.message for r in parse_log_records(array)] == ["hi", "x"]
    assert [r.message for r in parse_log_records(one + one)] == ["hi", "hi"]  # concatenated, no newline
    assert [r.message for r in parse_log_records(enveloped)] == ["wrapped"]
    assert parse_log_records("") == [] and parse_log_records("\n\n") == []
    assert parse_log_records(ndjson)[1].timestamp == datetime.fromtimestamp(1_700_000_001, UTC)
    assert parse_log_records(one)[0].metadata == {"a": "b"}
    with pytest.raises(ValueError):
        parse_log_records("not json")


# --------------------------------------------------------------------------- retries and failures


def test_503_twice_then_success_is_retried(with_ns: MicroRuntime, micro: MicroRuntimeStandIn) -> None:
    with_ns.create_service(NS, spec())
    micro.clear()
    micro.fail_next(2, status=503)
    [service] = with_ns.read_services(NS)
    assert service.status == "running"
    reads = micro.received("Read")
    assert len(reads) == 3
    assert reads[0]["body"] == reads[2]["body"]


def test_namespace_create_retried_on_503(micro: MicroRuntimeStandIn, runtime: MicroRuntime) -> None:
    micro.fail_next(2, status=503)
    runtime.create_namespace(NS)
    assert len(micro.received("Create")) == 3
    assert NS in micro.state()


def test_retries_run_out(with_ns: MicroRuntime, micro: MicroRuntimeStandIn, token: str) -> None:
    micro.fail_next(10, status=503)
    with pytest.raises(DependencyUnavailableError) as raised:
        with_ns.read_services(NS)
    assert raised.value.details["attempts"] == 4
    assert raised.value.details["proxy"] == micro.url
    assert raised.value.message == f"the runtime at {micro.url} did not answer"
    assert len(micro.received()) == 4
    assert token not in repr(raised.value.details) and token not in str(raised.value)


def test_service_create_is_not_retried_after_a_5xx(with_ns: MicroRuntime, micro: MicroRuntimeStandIn) -> None:
    micro.fail_next(1, status=503)
    with pytest.raises(DependencyUnavailableError) as raised:
        with_ns.create_service(NS, spec())
    assert raised.value.details["attempts"] == 1
    assert len(micro.received("Create")) == 1


def test_service_create_is_retried_on_429(with_ns: MicroRuntime, micro: MicroRuntimeStandIn) -> None:
    micro.fail_next(1, status=429)
    with_ns.create_service(NS, spec())
    assert len(micro.received("Create")) == 2


def test_timeout_is_retried(micro: MicroRuntimeStandIn, token: str) -> None:
    runtime = MicroRuntime(micro.url, token, timeout=0.2, retries=2, backoff=0.01)
    runtime.create_namespace(NS)
    micro.delay_next(0.6)
    assert runtime.read_services(NS) == []
    assert len(micro.received("Read")) == 2


def test_delete_whose_answer_was_lost_is_done(micro: MicroRuntimeStandIn, token: str) -> None:
    runtime = MicroRuntime(micro.url, token, timeout=0.2, retries=2, backoff=0.6)
    runtime.create_namespace(NS)
    runtime.create_service(NS, spec())
    micro.delay_next(0.3)  # the first Delete is done, but after the client gave up on it
    runtime.delete_service(NS, "helloworld", "v1")  # the retry answers 404: the first one did it
    assert len(micro.received("Delete")) == 2
    assert micro.state()[NS]["services"] == []


def test_unreachable_runtime(token: str) -> None:
    proxy = f"http://127.0.0.1:{closed_port()}"
    runtime = MicroRuntime(proxy, token, timeout=1, retries=3, backoff=0.01)
    started = time.monotonic()
    with pytest.raises(DependencyUnavailableError) as raised:
        runtime.read_services(NS)
    assert time.monotonic() - started < 3
    assert raised.value.message == f"the runtime at {proxy} did not answer"
    assert raised.value.details["attempts"] == 4
    assert raised.value.details["proxy"] == proxy
    assert token not in str(raised.value) and token not in repr(raised.value.details)
    # a connection never made is safe to retry even for a service Create
    with pytest.raises(DependencyUnavailableError) as raised:
        runtime.create_service(NS, spec())
    assert raised.value.details["attempts"] == 4


def test_bad_token_is_the_platform_credential_refused(micro: MicroRuntimeStandIn, token: str) -> None:
    wrong = token[::-1]
    runtime = MicroRuntime(micro.url, wrong, retries=3, backoff=0.01)
    with pytest.raises(DependencyUnavailableError) as raised:
        runtime.create_namespace(NS)
    error = raised.value
    assert "credential" in error.message
    assert error.code == "runtime_credential_refused"
    assert error.details["status"] == 401
    for text in (str(error), repr(error.details)):
        assert wrong not in text and token not in text
    request = only(micro)  # refused credentials are not retried
    assert request["authenticated"] is False
    assert "authorization" not in request["headers"]


def test_bad_request_is_a_validation_error(with_ns: MicroRuntime, micro: MicroRuntimeStandIn) -> None:
    micro.fail_next(1, status=400, detail="blank resource")
    with pytest.raises(ValidationError):
        with_ns.read_services(NS)


def test_wrong_namespace_header_is_refused_by_the_stand_in(micro: MicroRuntimeStandIn, token: str) -> None:
    import requests

    answer = requests.post(
        f"{micro.url}/runtime/Runtime/Read",
        json={"options": {"namespace": "other"}},
        headers={"Authorization": f"Bearer {token}", "Micro-Namespace": NS},
        timeout=5,
    )
    assert answer.status_code == 403
    assert set(answer.json()) == {"id", "code", "detail", "status"}


def test_stand_in_refuses_unknown_fields(micro: MicroRuntimeStandIn, token: str) -> None:
    import requests

    MicroRuntime(micro.url, token).create_namespace(NS)
    quota = {"name": "q", "namespace": NS, "requests": {"memory": 1, "ephemeral_storage": 1}}
    answer = requests.post(
        f"{micro.url}/runtime/Runtime/Create",
        json={"resource": {"resourcequota": quota}, "options": {"namespace": NS}},
        headers={"Authorization": f"Bearer {token}", "Micro-Namespace": NS},
        timeout=5,
    )
    assert answer.status_code == 400
    assert "unknown field" in answer.json()["detail"]
