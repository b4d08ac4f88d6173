"""The MicroRuntime adapter against the micro stand-in (micro v3.19.0's gateway, runtime and auth): the
wire of every RuntimePort and RuntimeAuthPort call, what reaches the service, error mapping, retries
and log parsing."""

from __future__ import annotations

import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import requests

from chalicelib.adapters.runtime.micro import MicroRuntime, micro_source, parse_log_records, platform_status
from chalicelib.domain.errors import ConflictError, DependencyUnavailableError, NotFoundError, ValidationError
from chalicelib.domain.ports import ResourceQuota, ServiceSpec
from localcloud.standins.micro import BareReposHost, MicroStandIn
from tests.helpers import ROOT

NS = "acme"
REMOTE = "https://github.com/acme/hello.git"


def _git(*args: str, cwd: Path | None = None) -> str:
    env = {"GIT_CONFIG_NOSYSTEM": "1", "GIT_CONFIG_GLOBAL": "/dev/null", "PATH": "/usr/bin:/bin:/usr/local/bin"}
    return subprocess.run(["git", *args], cwd=cwd, env=env, capture_output=True, text=True, check=True).stdout.strip()


@pytest.fixture(scope="module")
def hosts(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """``github.com/acme/hello`` (public) and ``github.com/acme/private`` (needs ``ghs_fetch``)."""
    root, work = tmp_path_factory.mktemp("hosts"), tmp_path_factory.mktemp("work")
    subprocess.run(["cp", "-r", f"{ROOT / 'examples' / 'hello'}/.", str(work)], check=True)
    _git("init", "-q", "-b", "main", cwd=work)
    _git("add", "-A", cwd=work)
    _git("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "one", cwd=work)
    for name in ("hello", "private"):
        _git("init", "-q", "--bare", str(root / "acme" / f"{name}.git"))
        _git("push", "-q", str(root / "acme" / f"{name}.git"), "main", cwd=work)
    host = BareReposHost(root, allowed=lambda path, cred: path != "acme/private" or cred == "ghs_fetch_0123456789")
    return {"host": host, "commit": _git("rev-parse", "HEAD", cwd=work)}


@pytest.fixture
def micro(hosts: dict[str, Any], tmp_path: Path) -> Iterator[MicroStandIn]:
    with MicroStandIn(git_hosts={"github.com": hosts["host"]}, workdir=tmp_path, watch_interval=0) as stand_in:
        yield stand_in


@pytest.fixture
def token(micro: MicroStandIn, secret: Callable[[str], str]) -> str:
    return secret(micro.admin_token())


@pytest.fixture
def runtime(micro: MicroStandIn, token: str) -> MicroRuntime:
    return MicroRuntime(micro.url, token, timeout=5, retries=3, backoff=0.01)


@pytest.fixture
def with_ns(micro: MicroStandIn, runtime: MicroRuntime) -> MicroRuntime:
    runtime.create_namespace(NS)
    micro.clear()
    return runtime


@pytest.fixture
def commit(hosts: dict[str, Any]) -> str:
    return str(hosts["commit"])


def spec(commit: str, deployment: str = "dep-1", name: str = "hello", **kwargs: Any) -> ServiceSpec:
    kwargs.setdefault("remote", REMOTE)
    return ServiceSpec(
        name=name,
        version=deployment,
        source="/artifacts/acme/hello/dep-1",  # the platform's own checkout: never sent to a cluster
        metadata={"commit": commit, "deployment_id": deployment, "path": ".", "port": "8080"},
        command=("python3", "server.py"),
        **kwargs,
    )


def only(micro: MicroStandIn, endpoint: str | None = None) -> dict[str, Any]:
    received = micro.received(endpoint)
    assert len(received) == 1, received
    return received[0]


def assert_wire(request: dict[str, Any], path: str, body: dict[str, Any]) -> None:
    assert request["method"] == "POST"
    assert request["path"] == path
    # micro's core services are routed in the micro domain, and the gateway keeps an account only when
    # its issuer is the header's namespace: the platform's admin token is of the micro issuer
    assert request["headers"]["micro-namespace"] == "micro"
    assert request["headers"]["content-type"] == "application/json"
    assert "authorization" not in request["headers"]  # recorded without it...
    assert request["account"] == {"id": "admin", "issuer": "micro"}  # ...but it carried the admin's token
    assert request["body"] == body


def wait_running(runtime: MicroRuntime, name: str = "hello", deployment: str = "dep-1") -> None:
    deadline = time.monotonic() + 30
    while True:
        found = {s.version: s for s in runtime.read_services(NS, name)}
        if deployment in found and found[deployment].status == "running":
            return
        assert deployment not in found or found[deployment].status != "error", found[deployment]
        assert time.monotonic() < deadline, found
        time.sleep(0.05)


def closed_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


# --------------------------------------------------------------------------- namespaces


def test_create_namespace_names_the_tenant_in_the_options(micro: MicroStandIn, runtime: MicroRuntime) -> None:
    runtime.create_namespace(NS)
    assert_wire(
        only(micro),
        "/runtime/Runtime/Create",
        {"resource": {"namespace": {"name": NS}}, "options": {"namespace": NS}},
    )
    assert NS in micro.state()


def test_create_existing_namespace_is_a_conflict(with_ns: MicroRuntime, micro: MicroStandIn) -> None:
    with pytest.raises(ConflictError) as raised:
        with_ns.create_namespace(NS)
    assert raised.value.details["runtime_status"] == 409
    assert len(micro.received()) == 1  # a conflict is not retried


def test_deleting_what_is_gone_already_succeeds_at_once(with_ns: MicroRuntime, micro: MicroStandIn) -> None:
    """Kubernetes' not-found reaches the platform as 500 go.micro.client "kubernetes: resource not found"
    (kubernetes/api/response.go, client/grpc/error.go): it is taken as done, not retried."""
    with_ns.delete_quota(NS, "platform-quota")
    with_ns.delete_network_policy(NS, "platform-isolation")
    with_ns.delete_namespace(NS)
    micro.clear()
    with_ns.delete_namespace(NS)
    with_ns.delete_service(NS, "hello", "dep-1")
    assert [r["path"] for r in micro.received()] == ["/runtime/Runtime/Delete", "/runtime/Runtime/Read"]
    assert NS not in micro.state()


# --------------------------------------------------------------------------- quotas and policies


def test_set_quota_creates_then_updates(with_ns: MicroRuntime, micro: MicroStandIn) -> None:
    requests_, limits = ResourceQuota(256, 250, 512), ResourceQuota(1024, 1000, 2048)
    with_ns.set_quota(NS, "default", requests_, limits)
    quota = {
        "name": "default",
        "namespace": NS,
        "requests": {"Memory": 256, "CPU": 250, "EphemeralStorage": 512},
        "limits": {"Memory": 1024, "CPU": 1000, "EphemeralStorage": 2048},
    }
    assert_wire(
        only(micro), "/runtime/Runtime/Create", {"resource": {"resourcequota": quota}, "options": {"namespace": NS}}
    )
    micro.clear()
    with_ns.set_quota(NS, "default", ResourceQuota(512, 500, 512), limits)
    create, update = micro.received()
    updated = dict(quota, requests={"Memory": 512, "CPU": 500, "EphemeralStorage": 512})
    assert_wire(
        create, "/runtime/Runtime/Create", {"resource": {"resourcequota": updated}, "options": {"namespace": NS}}
    )
    assert_wire(
        update, "/runtime/Runtime/Update", {"resource": {"resourcequota": updated}, "options": {"namespace": NS}}
    )
    assert micro.state()[NS]["quotas"]["default"]["requests"] == {"Memory": 512, "CPU": 500, "EphemeralStorage": 512}


def test_network_policy_set_update_delete(with_ns: MicroRuntime, micro: MicroStandIn) -> None:
    with_ns.set_network_policy(NS, "ingress", {"owner": NS})
    policy = {"name": "ingress", "namespace": NS, "allowedlabels": {"owner": NS}}
    assert_wire(
        only(micro), "/runtime/Runtime/Create", {"resource": {"networkpolicy": policy}, "options": {"namespace": NS}}
    )
    micro.clear()
    with_ns.set_network_policy(NS, "ingress", {"owner": NS, "tier": "api"})
    assert [r["path"].rsplit("/", 1)[1] for r in micro.received()] == ["Create", "Update"]
    assert micro.state()[NS]["policies"]["ingress"] == {"owner": NS, "tier": "api"}
    with_ns.delete_network_policy(NS, "ingress")
    assert micro.state()[NS]["policies"] == {}


def test_quota_in_a_missing_namespace_is_not_found(runtime: MicroRuntime) -> None:
    with pytest.raises(NotFoundError):
        runtime.set_quota("nowhere", "default", ResourceQuota(1, 1, 1), ResourceQuota(1, 1, 1))


# --------------------------------------------------------------------------- services


def test_create_service_sends_the_remote_at_the_commit_and_micro_runs_it(
    with_ns: MicroRuntime, micro: MicroStandIn, commit: str
) -> None:
    with_ns.create_service(NS, spec(commit, env={"B": "2", "A": "1"}, secrets={"DB_PASSWORD": "s3cr3t"}))
    create = micro.received("Create")[-1]
    assert_wire(
        create,
        "/runtime/Runtime/Create",
        {
            "resource": {
                "service": {
                    "name": "hello",
                    "version": commit,  # the ref micro checks out (manager.go build: gitSrc.Ref = Version)
                    "source": "github.com/acme/hello",  # what ParseSource takes (git.go); https is prepended
                    "metadata": {"commit": commit, "deployment_id": "dep-1", "path": ".", "port": "8080"},
                }
            },
            "options": {
                "command": ["python3", "server.py"],
                "env": ["A=1", "B=2", "MICRO_SERVICE=hello", "MICRO_VERSION=dep-1", "PORT=8080"],
                "secrets": {"DB_PASSWORD": "***"},  # recorded masked
                "namespace": NS,
            },
        },
    )
    wait_running(with_ns)
    [running] = with_ns.read_services(NS, "hello")
    assert running.version == "dep-1" and running.metadata["micro_version"] == commit
    assert running.source == "github.com/acme/hello"


def test_config_values_with_equals_reach_the_process_intact(
    with_ns: MicroRuntime, micro: MicroStandIn, commit: str
) -> None:
    """NewDeployment (kubernetes/client/client.go) drops an env entry that splits into more than two
    parts; the Secret route (util.go createCredentials + secretKeyRef) carries the value whole."""
    url = "https://api.example.com/v1?token=abc&mode=x=y"
    with_ns.create_service(NS, spec(commit, env={"API_URL": url, "B64": "aGk=", "PLAIN": "ok"}))
    wait_running(with_ns)
    pod = micro.runtime.pod(NS, "hello", commit)
    assert pod is not None
    assert pod.env["API_URL"] == url and pod.env["B64"] == "aGk=" and pod.env["PLAIN"] == "ok"
    options = micro.received("Create")[-1]["body"]["options"]
    assert "PLAIN=ok" in options["env"] and sorted(options["secrets"]) == ["API_URL", "B64"]


def test_a_private_repository_is_fetched_with_a_credential_asked_for_then(
    with_ns: MicroRuntime, micro: MicroStandIn, commit: str, secret: Callable[[str], str]
) -> None:
    credential = secret("ghs_fetch_0123456789")
    asked: list[int] = []

    def fetch() -> str:
        asked.append(1)
        return credential

    remote = "https://github.com/acme/private.git"
    with_ns.create_service(NS, spec(commit, name="private", remote=remote, fetch_credential=fetch))
    assert asked == [1]
    wait_running(with_ns, "private")
    recorded = micro.received("Create")[-1]["body"]["options"]["secrets"]
    assert recorded == {"GIT_CREDENTIALS": "***"}
    # without it micro cannot fetch the private repository: the service ends in error, saying why
    with_ns.create_service(NS, spec(commit, name="nocred", remote=remote, deployment="dep-2"))
    deadline = time.monotonic() + 20
    while True:
        [svc] = with_ns.read_services(NS, "nocred")
        if svc.status == "error":
            break
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert svc.metadata["error"] == "Error fetching git source: zip: not a valid zip file"


def test_a_source_a_cluster_cannot_fetch_is_refused_before_any_call(with_ns: MicroRuntime, micro: MicroStandIn) -> None:
    for remote in ("/home/ada/hello", "file:///srv/hello.git", "http://git.example/acme/hello.git"):
        with pytest.raises(ValidationError) as raised:
            with_ns.create_service(NS, spec("abc", remote=remote))
        assert raised.value.details["fields"][0]["field"] == "source"
    assert micro.received() == []


def test_micro_source() -> None:
    assert micro_source("https://github.com/acme/hello.git") == "github.com/acme/hello"
    assert micro_source("https://github.com/acme/hello/") == "github.com/acme/hello"
    assert micro_source("https://git.example:8443/a/b.git") == "git.example:8443/a/b"
    aliases = [("file:///tmp/repos/", "https://github.com/")]
    assert micro_source("file:///tmp/repos/acme/hello.git", aliases) == "github.com/acme/hello"
    with pytest.raises(ValidationError):
        micro_source("https://x-access-token:ghs_abc@github.com/acme/hello.git")


def test_redeploying_a_running_commit_replaces_its_deployment(
    with_ns: MicroRuntime, micro: MicroStandIn, commit: str
) -> None:
    """A Create of a name and version that exists rewrites micro's record and keeps the old pod and its
    environment (manager.go Create, kubernetes.go ErrAlreadyExists): the older one is deleted first."""
    with_ns.create_service(NS, spec(commit, env={"GREETING": "one"}))
    wait_running(with_ns)
    with_ns.create_service(NS, spec(commit, env={"GREETING": "one"}))  # the same deployment again: nothing
    assert len(micro.received("Create")) == 1
    with_ns.create_service(NS, spec(commit, deployment="dep-2", env={"GREETING": "two"}))
    assert [r["path"] for r in micro.received()][-3:] == [
        "/runtime/Runtime/Read",
        "/runtime/Runtime/Delete",
        "/runtime/Runtime/Create",
    ]
    wait_running(with_ns, deployment="dep-2")
    pod = micro.runtime.pod(NS, "hello", commit)
    assert pod is not None and pod.env["GREETING"] == "two"
    assert [s.version for s in with_ns.read_services(NS, "hello")] == ["dep-2"]


def test_delete_service_by_deployment_id(with_ns: MicroRuntime, micro: MicroStandIn, commit: str) -> None:
    with_ns.create_service(NS, spec(commit))
    micro.clear()
    with_ns.delete_service(NS, "hello", "dep-1")
    assert micro.received("Delete")[0]["body"] == {
        "resource": {"service": {"name": "hello", "version": commit}},
        "options": {"namespace": NS},
    }
    assert with_ns.read_services(NS, "hello") == []
    with_ns.delete_service(NS, "hello", "dep-1")  # gone already


@pytest.mark.parametrize(
    ("micro_status", "expected"),
    [(0, "starting"), (1, "starting"), ("BUILDING", "starting"), (3, "starting"), (4, "running"),
     ("RUNNING", "running"), (5, "stopped"), ("STOPPED", "stopped"), (7, "error"), ("ERROR", "error"), ("7", "error")],
)  # fmt: skip
def test_service_status_map(micro_status: int | str, expected: str) -> None:
    assert platform_status(micro_status) == expected


def test_status_falls_back_to_metadata_when_unknown() -> None:
    assert platform_status(0, {"status": "error"}) == "error"
    assert platform_status(None, {"status": "running"}) == "running"
    assert platform_status(None, {}) == "starting"


def test_read_services_of_a_namespace_without_any(runtime: MicroRuntime) -> None:
    assert runtime.read_services("nowhere") == []


# --------------------------------------------------------------------------- logs


def test_logs_without_time_answer_the_tail_whatever_since(
    with_ns: MicroRuntime, micro: MicroStandIn, commit: str
) -> None:
    """handler.go never sets LogRecord.Timestamp: records say "0", so ``since`` cannot filter them."""
    with_ns.create_service(NS, spec(commit))
    wait_running(with_ns)
    for n in range(5):
        micro.add_log(NS, "hello", f"line {n}")
    micro.clear()
    records = list(with_ns.logs(NS, "hello", since=datetime(2026, 1, 1, tzinfo=UTC), tail=3))
    assert_wire(
        only(micro),
        "/runtime/Runtime/Logs",
        {"count": 3, "options": {"namespace": NS}, "service": "hello", "stream": False},
    )
    assert [r.message for r in records] == ["line 2", "line 3", "line 4"]
    assert all(r.timestamp == datetime.fromtimestamp(0, UTC) for r in records)
    assert list(with_ns.logs(NS, "nothing-deployed")) == []  # 404 runtime.logs: no pods, no lines


def test_logs_with_times_honour_since() -> None:
    timed = (
        '{"timestamp":"1700000000","metadata":{},"message":"old"}'
        '{"timestamp":"1800000000","metadata":{"level":"info"},"message":"new"}'
    )

    class Answer:
        status_code = 200
        content = timed.encode()

    class Session:
        def post(self, *args: Any, **kwargs: Any) -> Any:
            return Answer()

    runtime = MicroRuntime("http://micro.invalid", "t", session=Session())  # type: ignore[arg-type]
    records = list(runtime.logs(NS, "hello", since=datetime.fromtimestamp(1_750_000_000, UTC)))
    assert [(r.message, r.metadata) for r in records] == [("new", {"level": "info"})]


def test_parse_log_records_shapes() -> None:
    one = '{"timestamp":"0","metadata":{"a":"b"},"message":"hi"}'
    ndjson = one + "\n" + '{"timestamp": "1700000001", "message": "there"}\n'
    array = "[" + one + ', {"timestamp": 1700000002, "message": "x"}]'
    assert [r.message for r in parse_log_records(one + one)] == ["hi", "hi"]  # the gateway's stream framing
    assert [r.message for r in parse_log_records(ndjson)] == ["hi", "there"]
    assert [r.message for r in parse_log_records(array)] == ["hi", "x"]
    assert parse_log_records("") == [] and parse_log_records("\n\n") == []
    assert parse_log_records(ndjson)[1].timestamp == datetime.fromtimestamp(1_700_000_001, UTC)
    assert parse_log_records(one)[0].timestamp == datetime.fromtimestamp(0, UTC)
    with pytest.raises(ValueError):
        parse_log_records("not json")


# --------------------------------------------------------------------------- accounts


def test_member_accounts_tokens_and_deletion(with_ns: MicroRuntime, micro: MicroStandIn) -> None:
    with_ns.create_account(NS, "grace-1a2b", "pw-123456", ["admin"], {"platform": "member", "login": "grace"})
    generate = only(micro, "Generate")
    assert generate["body"] == {
        "id": "grace-1a2b",
        "name": "grace-1a2b",
        "type": "user",
        "secret": "***",
        "scopes": ["admin"],
        "metadata": {"platform": "member", "login": "grace"},
        "options": {"namespace": NS},
    }
    with pytest.raises(ConflictError):
        with_ns.create_account(NS, "grace-1a2b", "pw", ["admin"], {})
    assert [a.id for a in with_ns.list_accounts(NS)] == ["grace-1a2b"]
    token = with_ns.token(NS, "grace-1a2b", "pw-123456", 900)
    assert 890 <= (token.expires_at - datetime.now(UTC)).total_seconds() <= 900
    member = {"Authorization": f"Bearer {token.access_token}", "Micro-Namespace": "micro"}
    read = requests.post(
        f"{micro.url}/runtime/Runtime/Read", json={"options": {"namespace": NS}}, headers=member, timeout=10
    )
    assert read.status_code == 200
    with_ns.delete_account(NS, "grace-1a2b")
    with_ns.delete_account(NS, "grace-1a2b")  # gone already
    assert with_ns.list_accounts(NS) == []
    refused = requests.post(
        f"{micro.url}/runtime/Runtime/Read", json={"options": {"namespace": NS}}, headers=member, timeout=10
    )
    assert refused.status_code == 401  # blocked at the gateway: the JWT itself would still inspect


# --------------------------------------------------------------------------- retries and failures


def test_503_twice_then_success_is_retried(with_ns: MicroRuntime, micro: MicroStandIn) -> None:
    micro.fail_next(2, status=503)
    assert with_ns.read_services(NS) == []
    reads = micro.received("Read")
    assert len(reads) == 3 and reads[0]["body"] == reads[2]["body"]


def test_retries_run_out(with_ns: MicroRuntime, micro: MicroStandIn, token: str) -> None:
    micro.fail_next(10, status=503)
    with pytest.raises(DependencyUnavailableError) as raised:
        with_ns.read_services(NS)
    assert raised.value.details["attempts"] == 4
    assert raised.value.details["api"] == micro.url
    assert raised.value.message == f"the runtime at {micro.url} did not answer"
    assert token not in repr(raised.value.details) and token not in str(raised.value)


def test_service_create_is_not_retried_after_a_5xx(with_ns: MicroRuntime, micro: MicroStandIn, commit: str) -> None:
    micro.fail_next(1, status=503, endpoint="Create")
    with pytest.raises(DependencyUnavailableError) as raised:
        with_ns.create_service(NS, spec(commit))
    assert raised.value.details["attempts"] == 1
    assert len(micro.received("Create")) == 1


def test_service_create_is_retried_on_429(with_ns: MicroRuntime, micro: MicroStandIn, commit: str) -> None:
    micro.fail_next(1, status=429, endpoint="Create")
    with_ns.create_service(NS, spec(commit))
    assert len(micro.received("Create")) == 2
    wait_running(with_ns)


def test_timeout_is_retried(micro: MicroStandIn, token: str) -> None:
    runtime = MicroRuntime(micro.url, token, timeout=0.2, retries=2, backoff=0.01)
    micro.delay_next(0.6)
    assert runtime.read_services(NS) == []
    assert len(micro.received("Read")) == 2


def test_delete_whose_answer_was_lost_is_done(with_ns: MicroRuntime, micro: MicroStandIn, token: str) -> None:
    runtime = MicroRuntime(micro.url, token, timeout=0.2, retries=2, backoff=0.6)
    runtime.set_quota(NS, "q", ResourceQuota(1, 1, 1), ResourceQuota(1, 1, 1))
    micro.clear()
    micro.delay_next(0.3)  # the first Delete is done, but after the client gave up on it
    runtime.delete_quota(NS, "q")  # the retry answers not found: the first one did it
    assert len(micro.received("Delete")) == 2
    assert micro.state()[NS]["quotas"] == {}


def test_unreachable_runtime(token: str, commit: str) -> None:
    api = f"http://127.0.0.1:{closed_port()}"
    runtime = MicroRuntime(api, token, timeout=1, retries=3, backoff=0.01)
    started = time.monotonic()
    with pytest.raises(DependencyUnavailableError) as raised:
        runtime.read_services(NS)
    assert time.monotonic() - started < 3
    assert raised.value.message == f"the runtime at {api} did not answer"
    assert raised.value.details["attempts"] == 4
    assert token not in str(raised.value) and token not in repr(raised.value.details)


def test_a_token_micro_does_not_accept_is_the_platform_credential_refused(micro: MicroStandIn, token: str) -> None:
    wrong = token[:-4] + ("AAAA" if not token.endswith("AAAA") else "BBBB")
    runtime = MicroRuntime(micro.url, wrong, retries=3, backoff=0.01)
    with pytest.raises(DependencyUnavailableError) as raised:
        runtime.create_namespace(NS)
    error = raised.value
    assert error.code == "runtime_credential_refused" and error.details["status"] == 401
    for text in (str(error), repr(error.details)):
        assert wrong not in text and token not in text
    request = only(micro)  # refused credentials are not retried
    assert request["account"] is None and "authorization" not in request["headers"]
