"""The local runtime: deployed services as real local processes behind a proxy per namespace.

Every test runs real Python processes on loopback with a state directory under tmp_path, and checks
in teardown that no process it started is left behind."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from chalicelib.adapters.runtime.local import LocalRuntime
from chalicelib.domain.errors import ConflictError, NotFoundError, ValidationError
from chalicelib.domain.ports import RuntimeService, ServiceSpec

NS = "acme"

SERVER = textwrap.dedent(
    """
    import json, os, sys, time
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    MODE = os.environ.get("MODE", "ok")
    PLATFORMS = ("AWS_", "PLATFORM_", "GITHUB_", "VIRTUAL_ENV")
    for i in range(int(os.environ.get("LINES", "0"))):
        print(f"line {i}")
    if MODE == "crash":
        print("booting")
        print("fatal: cannot start", file=sys.stderr)
        sys.exit(3)
    if MODE == "hog":
        print("allocating 1 GiB")
        hog = bytearray(1024 * 1024 * 1024)
        print("allocated", len(hog))

    if MODE == "stubborn":  # ignores SIGTERM and leaves a child in its process group
        import signal, subprocess
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
        print("child", child.pid)

    READY = os.environ.get("READY_FILE")

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            if self.path == "/health":
                ok = READY is None or os.path.exists(READY)
                self.answer(200 if ok else 503, {"ok": ok})
                return
            self.answer(200, {
                "version": os.environ["MICRO_VERSION"],
                "namespace": os.environ["MICRO_NAMESPACE"],
                "service": os.environ["MICRO_SERVICE"],
                "greeting": os.environ.get("GREETING"),
                "secret": os.environ.get("API_KEY"),
                "path": self.path,
                "cwd": os.getcwd(),
                "leaked": sorted(k for k in os.environ if k.startswith(PLATFORMS)),
                "search_path": os.environ["PATH"],
            })

        def do_POST(self):
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            self.answer(201, {"echo": body.decode(), "prefix": self.headers.get("X-Forwarded-Prefix")})

        def answer(self, status, payload):
            body = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format, *args):
            print("request", self.path)

    print("listening on", os.environ["PORT"])
    ThreadingHTTPServer(("127.0.0.1", int(os.environ["PORT"])), Handler).serve_forever()
    """
)


# --------------------------------------------------------------------------- helpers


def wait_for(predicate: Callable[[], Any], timeout: float = 10.0, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.03)


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def dead(pid: int) -> bool:
    """Gone, or a zombie waiting for init to reap it (a grandchild of the test is not ours to reap)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return True
    return stat.rpartition(")")[2].split()[0] in ("Z", "X")


def get(url: str, method: str = "GET", data: bytes | None = None) -> tuple[int, dict[str, Any]]:
    request = urllib.request.Request(url, method=method, data=data)
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


class Harness:
    """Runtimes and pids of one test; ``close`` shuts every runtime down and checks nothing is left."""

    def __init__(self, clock: Any, state_dir: Path, artifact: Path) -> None:
        self.clock = clock
        self.state_dir = state_dir
        self.artifact = artifact
        self.runtimes: list[LocalRuntime] = []
        self.pids: set[int] = set()

    def runtime(self) -> LocalRuntime:
        rt = LocalRuntime(self.clock, self.state_dir, poll_interval=0.05)
        self.runtimes.append(rt)
        return rt

    def spec(
        self,
        version: str,
        *,
        name: str = "api",
        env: dict[str, str] | None = None,
        secrets: dict[str, str] | None = None,
        **metadata: str,
    ) -> ServiceSpec:
        meta = {"port": "8080", "health_path": "/health", "path": "svc", "deployment_id": f"dep-{version}"}
        meta.update(metadata)
        return ServiceSpec(
            name=name,
            version=version,
            source=str(self.artifact),
            metadata=meta,
            command=[sys.executable, "server.py"],
            env=env or {},
            secrets=secrets or {},
        )

    def service(self, rt: LocalRuntime, name: str, version: str) -> RuntimeService:
        found = [s for s in rt.read_services(NS, name) if s.version == version]
        assert len(found) == 1, found
        if found[0].metadata.get("pid"):
            self.pids.add(int(found[0].metadata["pid"]))
        return found[0]

    def wait_status(
        self, rt: LocalRuntime, name: str, version: str, status: str, timeout: float = 10.0
    ) -> RuntimeService:
        found: RuntimeService = wait_for(
            lambda: (s := self.service(rt, name, version)).status == status and s,
            timeout,
            f"{name}:{version} to be {status}",
        )
        return found

    def close(self) -> None:
        for rt in self.runtimes:
            rt.shutdown()
        left = [pid for pid in self.pids if alive(pid) and not dead(pid)]
        for pid in left:
            os.kill(pid, signal.SIGKILL)
        assert not left, f"processes left behind: {left}"


@pytest.fixture
def harness(tmp_path: Path, clock: Any) -> Iterator[Harness]:
    artifact = tmp_path / "artifact"
    (artifact / "svc").mkdir(parents=True)
    (artifact / "svc" / "server.py").write_text(SERVER)
    h = Harness(clock, tmp_path / "state", artifact)
    yield h
    h.close()


@pytest.fixture
def runtime(harness: Harness) -> LocalRuntime:
    rt = harness.runtime()
    rt.create_namespace(NS)
    return rt


# --------------------------------------------------------------------------- tests


def test_a_service_starts_runs_and_answers_through_the_proxy(
    harness: Harness, runtime: LocalRuntime, secret: Any
) -> None:
    key = secret("sk-local-runtime-0123456789")
    started = time.monotonic()
    runtime.create_service(NS, harness.spec("v1", env={"GREETING": "hello"}, secrets={"API_KEY": key}, memory_mib="64"))
    assert time.monotonic() - started < 1.0  # non-blocking
    assert harness.service(runtime, "api", "v1").status == "starting"

    svc = harness.wait_status(runtime, "api", "v1", "running")
    meta = svc.metadata
    assert meta["port"] != "8080" and meta["manifest_port"] == "8080"
    assert meta["deployment_id"] == "dep-v1" and meta["instance_id"] and meta["started_at"]
    assert meta["memory_limit_mib"] == "320"
    assert meta["address"] == f"{runtime.proxy_address(NS)}/api"
    assert alive(int(meta["pid"]))

    status, body = get(meta["address"] + "/hello?x=1")
    assert status == 200
    assert body["version"] == "v1" and body["namespace"] == NS and body["service"] == "api"
    assert body["greeting"] == "hello" and body["secret"] == key
    assert body["path"] == "/hello?x=1" and body["cwd"].endswith("svc")
    assert body["leaked"] == []  # nothing of the platform's environment reaches a service
    status, body = get(meta["address"] + "/things", method="POST", data=b"payload")
    assert (status, body) == (201, {"echo": "payload", "prefix": "/api"})
    assert runtime.request_counts(NS) == {"api": 2}

    status, body = get(f"{runtime.proxy_address(NS)}/nope/")
    assert status == 404 and body["error"]["code"] == "not_found"
    assert runtime.request_counts(NS) == {"api": 2}

    runtime.consume_request_counts(NS, {"api": 1})
    assert runtime.request_counts(NS) == {"api": 1}

    with pytest.raises(ConflictError):
        runtime.create_service(NS, harness.spec("v1"))
    with pytest.raises(NotFoundError):
        runtime.create_service("elsewhere", harness.spec("v1"))
    with pytest.raises(ValidationError):
        runtime.create_service(NS, harness.spec("v9", path="../outside"))
    # secrets are never written to the state files
    for path in harness.state_dir.rglob("*"):
        if path.is_file():
            assert key not in path.read_text(errors="replace"), path


def test_a_new_version_takes_traffic_only_once_healthy(harness: Harness, runtime: LocalRuntime, tmp_path: Path) -> None:
    runtime.create_service(NS, harness.spec("v1"))
    address = harness.wait_status(runtime, "api", "v1", "running").metadata["address"]

    ready = tmp_path / "v2-ready"
    runtime.create_service(NS, harness.spec("v2", env={"READY_FILE": str(ready)}))
    wait_for(lambda: harness.service(runtime, "api", "v2").metadata["pid"], what="v2 to start")
    time.sleep(0.4)  # several health checks answer 503: never healthy stays starting
    assert harness.service(runtime, "api", "v2").status == "starting"
    assert get(address)[1]["version"] == "v1"

    ready.touch()
    harness.wait_status(runtime, "api", "v2", "running")
    assert get(address)[1]["version"] == "v2"

    old_pid = int(harness.service(runtime, "api", "v1").metadata["pid"])
    runtime.delete_service(NS, "api", "v1")
    with pytest.raises(ProcessLookupError):
        os.kill(old_pid, 0)
    assert [s.version for s in runtime.read_services(NS, "api")] == ["v2"]
    assert get(address)[1]["version"] == "v2"
    with pytest.raises(NotFoundError):
        runtime.delete_service(NS, "api", "v1")

    # a running version whose health fails three times in a row is unhealthy, and gets no traffic
    ready.unlink()
    svc = harness.wait_status(runtime, "api", "v2", "error")
    assert svc.metadata["error"] == "unhealthy" and alive(int(svc.metadata["pid"]))
    status, body = get(address)
    assert status == 502 and body["error"]["code"] == "bad_gateway"
    ready.touch()
    harness.wait_status(runtime, "api", "v2", "running")


def test_a_crash_at_start_is_an_error_with_exit_code_and_output(harness: Harness, runtime: LocalRuntime) -> None:
    runtime.create_service(NS, harness.spec("v1", env={"MODE": "crash"}))
    svc = harness.wait_status(runtime, "api", "v1", "error")
    assert svc.metadata["error"] == "exited with code 3"
    assert svc.metadata["exit_code"] == "3"
    assert "booting" in svc.metadata["last_output"] and "fatal: cannot start" in svc.metadata["last_output"]
    status, body = get(svc.metadata["address"])
    assert status == 502 and body["error"]["code"] == "bad_gateway"

    [record] = runtime.instances(NS)
    assert record["exit_reason"] == "exited" and record["exit_code"] == 3 and record["stopped_at"]
    runtime.delete_service(NS, "api", "v1")  # an errored version is deleted like any other
    assert runtime.read_services(NS) == []
    assert len(runtime.instances(NS)) == 1


def test_the_memory_limit_stops_an_over_allocating_service(harness: Harness, runtime: LocalRuntime) -> None:
    runtime.create_service(NS, harness.spec("v1", env={"MODE": "hog"}, memory_mib="64"))
    svc = harness.wait_status(runtime, "api", "v1", "error")
    assert svc.metadata["error"].startswith(("exited with code", "killed by signal"))
    assert "MemoryError" in svc.metadata["last_output"]
    assert "allocated" not in svc.metadata["last_output"]


def test_logs_are_captured_and_tail_works(harness: Harness, runtime: LocalRuntime) -> None:
    runtime.create_service(NS, harness.spec("v1", env={"LINES": "30"}))
    harness.wait_status(runtime, "api", "v1", "running")
    wait_for(lambda: any(r.message == "line 29" for r in runtime.logs(NS, "api")), what="output in the log")

    records = list(runtime.logs(NS, "api", tail=1000))
    lines = [r.message for r in records if r.message.startswith("line ")]
    assert lines == [f"line {i}" for i in range(30)]
    assert all(r.metadata == {"version": "v1"} for r in records)
    assert any(r.message.startswith("[runtime] started api v1") for r in records)
    assert list(runtime.logs(NS, "api", tail=3)) == records[-3:]
    assert list(runtime.logs(NS, "api", since=harness.clock.now() + timedelta(seconds=1))) == []
    assert list(runtime.logs(NS, "other")) == []
    log_file = harness.state_dir / "logs" / NS / "api.log"
    assert "\tv1\tline 0" in log_file.read_text()


def test_instance_records_have_a_start_and_a_stop(harness: Harness, runtime: LocalRuntime) -> None:
    runtime.create_service(NS, harness.spec("v1"))
    instance_id = harness.wait_status(runtime, "api", "v1", "running").metadata["instance_id"]
    [running] = runtime.instances(NS)
    assert running["instance_id"] == instance_id and running["stopped_at"] is None
    runtime.delete_service(NS, "api", "v1")

    [record] = runtime.instances(NS)
    assert record["service"] == "api" and record["version"] == "v1" and record["deployment_id"] == "dep-v1"
    assert record["started_at"] and record["stopped_at"] and record["exit_reason"] == "deleted"
    raw = [json.loads(line) for line in (harness.state_dir / "instances.jsonl").read_text().splitlines()]
    assert [(r["event"], r["instance_id"]) for r in raw] == [("start", instance_id), ("stop", instance_id)]


def test_shutdown_and_restore_bring_the_service_back_at_the_same_address(harness: Harness, secret: Any) -> None:
    key = secret("sk-restore-secret-987654321")
    rt1 = harness.runtime()
    rt1.create_namespace(NS)
    rt1.create_service(NS, harness.spec("v1", secrets={"API_KEY": key}))
    svc = harness.wait_status(rt1, "api", "v1", "running")
    address, pid = svc.metadata["address"], int(svc.metadata["pid"])
    assert get(address)[1]["secret"] == key

    rt1.shutdown()
    assert not alive(pid)
    [record] = rt1.instances(NS)
    assert record["exit_reason"] == "shutdown"
    saved = json.loads((harness.state_dir / "services.json").read_text())
    assert [(s["name"], s["version"], s["secret_names"]) for s in saved["services"]] == [("api", "v1", ["API_KEY"])]
    assert key not in json.dumps(saved)

    rt2 = harness.runtime()
    assert rt2.read_services(NS) == []
    asked: list[tuple[str, str]] = []

    def secrets_for(namespace: str, service: str) -> dict[str, str]:
        asked.append((namespace, service))
        return {"API_KEY": key}

    assert rt2.restore(secrets_for) == [(NS, "api", "v1")]
    assert asked == [(NS, "api")]
    svc = harness.wait_status(rt2, "api", "v1", "running")
    assert svc.metadata["address"] == address
    assert int(svc.metadata["pid"]) != pid
    status, body = get(address)
    assert status == 200 and body["secret"] == key
    assert rt2.request_counts(NS) == {"api": 2}  # counts survive the restart
    assert [r["exit_reason"] for r in rt2.instances(NS)] == ["shutdown", None]


def test_delete_namespace_stops_everything(harness: Harness, runtime: LocalRuntime) -> None:
    runtime.create_service(NS, harness.spec("v1"))
    runtime.create_service(NS, harness.spec("v1", name="web"))
    pids = [int(harness.wait_status(runtime, n, "v1", "running").metadata["pid"]) for n in ("api", "web")]
    proxy = runtime.proxy_address(NS)
    assert proxy is not None

    runtime.delete_namespace(NS)
    for pid in pids:
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)
    with pytest.raises(urllib.error.URLError):
        urllib.request.urlopen(f"{proxy}/api/", timeout=2)
    with pytest.raises(NotFoundError):
        runtime.read_services(NS)
    assert runtime.proxy_address(NS) is None
    assert {r["exit_reason"] for r in runtime.instances(NS)} == {"namespace_deleted"}
    saved = json.loads((harness.state_dir / "services.json").read_text())
    assert saved["services"] == [] and saved["proxies"] == {}


def test_shared_answers_one_runtime_per_state_dir(harness: Harness) -> None:
    first = LocalRuntime.shared(harness.clock, harness.state_dir)
    harness.runtimes.append(first)
    assert LocalRuntime.shared(harness.clock, harness.state_dir) is first
    first.shutdown()
    again = LocalRuntime.shared(harness.clock, harness.state_dir)
    harness.runtimes.append(again)
    assert again is not first


def test_a_service_ignoring_sigterm_is_killed_with_its_children(
    harness: Harness, runtime: LocalRuntime, monkeypatch: pytest.MonkeyPatch
) -> None:
    from chalicelib.adapters.runtime.local import processes as local

    monkeypatch.setattr(local, "STOP_GRACE_SECONDS", 0.3)
    runtime.create_service(NS, harness.spec("v1", env={"MODE": "stubborn"}))
    pid = int(harness.wait_status(runtime, "api", "v1", "running").metadata["pid"])
    line = wait_for(
        lambda: next((r.message for r in runtime.logs(NS, "api") if r.message.startswith("child ")), None),
        what="the child's pid",
    )
    child = int(line.split()[1])
    harness.pids.add(child)
    assert alive(child)

    runtime.delete_service(NS, "api", "v1")
    assert not alive(pid)
    wait_for(lambda: dead(child), timeout=3, what="the child to be killed")
    [record] = runtime.instances(NS)
    assert record["exit_reason"] == "deleted" and record["exit_code"] == -signal.SIGKILL


# --------------------------------------------------------------------------- a crash of the runtime's process

CRASHING_OWNER = textwrap.dedent(
    """
    import json, sys, time
    from pathlib import Path
    from chalicelib.adapters.runtime.local import LocalRuntime
    from chalicelib.domain.clock import SystemClock
    from chalicelib.domain.ports import ServiceSpec

    state, artifact = Path(sys.argv[1]), sys.argv[2]
    rt = LocalRuntime(SystemClock(), state, poll_interval=0.05)
    rt.create_namespace("acme")
    for name, version in (("api", "v1"), ("api", "v2"), ("web", "v1")):
        meta = {"port": "8080", "health_path": "/health", "path": "svc", "deployment_id": f"dep-{version}"}
        rt.create_service("acme", ServiceSpec(name, version, artifact, meta, (sys.executable, "server.py"), {}, {}))
    deadline = time.monotonic() + 20
    while {s.status for s in rt.read_services("acme")} != {"running"} and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(1.2)  # a heartbeat after every start
    pids = {f"{s.name}@{s.version}": int(s.metadata["pid"]) for s in rt.read_services("acme")}
    print("PIDS", json.dumps(pids), flush=True)
    time.sleep(600)  # until killed
    """
)


def service_processes(artifact: Path) -> dict[tuple[str, str], list[int]]:
    """Every live process running in the artifact's service directory, by (service, version)."""
    found: dict[tuple[str, str], list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or dead(int(entry.name)):
            continue
        try:
            if Path(os.readlink(entry / "cwd")) != artifact / "svc":
                continue
            env = dict(item.split("=", 1) for item in (entry / "environ").read_text().split("\0") if "=" in item)
        except OSError:
            continue
        key = (env.get("MICRO_SERVICE", "?"), env.get("MICRO_VERSION", "?"))
        found.setdefault(key, []).append(int(entry.name))
    return found


def test_after_a_crash_the_next_runtime_stops_the_orphans_records_their_stop_and_runs_one_copy(
    harness: Harness, tmp_path: Path
) -> None:
    """kill -9 of the process that owns the runtime (as of `make run`) leaves its services running; the
    next runtime on the same state stops them before it starts anything, and restore runs one copy."""
    from datetime import UTC, datetime

    from chalicelib.domain.clock import SystemClock

    script = tmp_path / "owner.py"
    script.write_text(CRASHING_OWNER)
    owner = subprocess.Popen(
        [sys.executable, str(script), str(harness.state_dir), str(harness.artifact)],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert owner.stdout is not None
        line = next((line for line in owner.stdout if line.startswith("PIDS ")), "")
        assert line, "the owner process printed no pids"
        old = {key: int(pid) for key, pid in json.loads(line[5:]).items()}
        harness.pids.update(old.values())
        owner.send_signal(signal.SIGKILL)
        owner.wait(10)
    finally:
        if owner.poll() is None:
            owner.kill()
        if owner.stdout is not None:
            owner.stdout.close()
    killed_at = datetime.now(UTC)
    assert all(alive(pid) and not dead(pid) for pid in old.values())  # orphans, still running
    heartbeat = datetime.fromisoformat((harness.state_dir / "heartbeat").read_text())

    rt = LocalRuntime(SystemClock(), harness.state_dir, poll_interval=0.05)
    harness.runtimes.append(rt)
    for key, pid in old.items():  # stopped before the new runtime starts anything
        assert dead(pid), f"orphan {key} (pid {pid}) still runs"
    assert sorted((r["service"], r["version"]) for r in rt.orphans) == [("api", "v1"), ("api", "v2"), ("web", "v1")]

    assert sorted(rt.restore()) == [(NS, "api", "v1"), (NS, "api", "v2"), (NS, "web", "v1")]
    for name, version in (("api", "v1"), ("api", "v2"), ("web", "v1")):
        harness.wait_status(rt, name, version, "running")
    running = service_processes(harness.artifact)
    assert {key: len(pids) for key, pids in running.items()} == {("api", "v1"): 1, ("api", "v2"): 1, ("web", "v1"): 1}
    assert not set(old.values()) & {pid for pids in running.values() for pid in pids}

    records = rt.instances(NS)
    assert len(records) == 6
    crashed = [r for r in records if r["exit_reason"] == "runtime_crashed"]
    assert sorted(r["pid"] for r in crashed) == sorted(old.values())
    for r in crashed:  # stopped when the crashed runtime was last known alive, never before its start
        stopped = datetime.fromisoformat(r["stopped_at"])
        assert stopped == max(heartbeat, datetime.fromisoformat(r["started_at"])) and stopped <= killed_at
        assert r["exit_code"] is None
    assert [r["stopped_at"] for r in records if r["exit_reason"] != "runtime_crashed"] == [None, None, None]
    raw = [json.loads(line) for line in (harness.state_dir / "instances.jsonl").read_text().splitlines()]
    assert sorted(r["event"] for r in raw) == ["start"] * 6 + ["stop"] * 3  # one stop per orphan, once
    assert any("ended unexpectedly; stopped its process" in r.message for r in rt.logs(NS, "web"))

    rt.shutdown()  # a clean stop after that closes the new ones, and nothing more
    again = LocalRuntime(SystemClock(), harness.state_dir, poll_interval=0.05)
    harness.runtimes.append(again)
    assert again.orphans == []
    assert [r["exit_reason"] for r in again.instances(NS)].count("shutdown") == 3


def test_a_recycled_pid_is_never_taken_for_an_orphan(harness: Harness, tmp_path: Path) -> None:
    """A start record left open whose pid now belongs to another process (another start time) is closed
    in the records, and that process is left alone."""
    stranger = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        harness.state_dir.mkdir(parents=True)
        base = {"namespace": NS, "service": "api", "deployment_id": "dep-v1", "started_at": "2026-11-27T11:00:00+00:00"}
        base |= {"stopped_at": None, "exit_reason": None, "exit_code": None, "event": "start"}
        records = [
            {**base, "instance_id": "recycled", "version": "v1", "pid": stranger.pid, "process_start": "1"},
            {**base, "instance_id": "gone", "version": "v2", "pid": 2**22 + 7, "process_start": "12345"},
        ]
        (harness.state_dir / "instances.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
        (harness.state_dir / "heartbeat").write_text("2026-11-27T11:30:00+00:00")

        rt = harness.runtime()
        assert stranger.poll() is None  # not ours: left running
        assert sorted(r["instance_id"] for r in rt.orphans) == ["gone", "recycled"]
        stops = {r["instance_id"]: r for r in rt.instances(NS)}
        assert {i: (r["exit_reason"], r["stopped_at"]) for i, r in stops.items()} == {
            "recycled": ("runtime_crashed", "2026-11-27T11:30:00+00:00"),
            "gone": ("runtime_crashed", "2026-11-27T11:30:00+00:00"),
        }
    finally:
        stranger.kill()
        stranger.wait()


def test_a_second_runtime_on_a_live_runtimes_state_is_refused(harness: Harness, runtime: LocalRuntime) -> None:
    from chalicelib.domain.errors import DependencyUnavailableError

    with pytest.raises(DependencyUnavailableError) as err:
        LocalRuntime(harness.clock, harness.state_dir)
    assert "owns this state directory" in err.value.message
    runtime.shutdown()
    harness.runtime()  # once the owner is gone, another may take over


def test_a_process_is_told_apart_by_its_start_time_with_or_without_proc(tmp_path: Path) -> None:
    from chalicelib.adapters.runtime.local.processes import process_start as _process_start

    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        for proc in (Path("/proc"), tmp_path / "no-proc"):  # without /proc (macOS), `ps -o lstart`
            mark = _process_start(child.pid, proc)
            assert mark is not None and mark == _process_start(child.pid, proc)
    finally:
        child.kill()
        child.wait()
    assert _process_start(child.pid) is None and _process_start(child.pid, tmp_path / "no-proc") is None


def test_a_service_sees_nothing_of_the_platforms_environment(
    harness: Harness, runtime: LocalRuntime, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Not its variables, nor its virtualenv on the PATH (the platform's interpreter, packages and
    location); the service runs in its own artifact directory."""
    if sys.prefix == sys.base_prefix:
        pytest.skip("the platform runs in a virtualenv (make venv)")
    venv = Path(sys.prefix).resolve()
    monkeypatch.setenv("PATH", os.pathsep.join([str(venv / "bin"), os.environ.get("PATH", "/usr/bin:/bin")]))
    monkeypatch.setenv("VIRTUAL_ENV", str(venv))
    for name in ("GITHUB_WEBHOOK_SECRET", "PLATFORM_LOCAL_KEY", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.setenv(name, "platform-only")
    runtime.create_service(NS, harness.spec("v1"))
    body = get(harness.wait_status(runtime, "api", "v1", "running").metadata["address"])[1]
    assert body["leaked"] == []
    entries = [Path(e).resolve() for e in body["search_path"].split(os.pathsep)]
    assert entries and not [e for e in entries if e == venv or venv in e.parents]
    assert body["cwd"] == str(harness.artifact / "svc")


def test_the_runtimes_files_are_this_users_only(harness: Harness, runtime: LocalRuntime) -> None:
    """State, instance records, logs, counts: 0600 in 0700 directories, whatever the umask."""
    old = os.umask(0o022)
    try:
        runtime.create_service(NS, harness.spec("v1"))
        address = harness.wait_status(runtime, "api", "v1", "running").metadata["address"]
        get(address)
        runtime.consume_request_counts(NS, {})
        runtime.delete_service(NS, "api", "v1")
    finally:
        os.umask(old)
    modes = {str(p.relative_to(harness.state_dir)): p.stat().st_mode & 0o777 for p in harness.state_dir.rglob("*")}
    assert harness.state_dir.stat().st_mode & 0o777 == 0o700
    for name in ("services.json", "instances.jsonl", "namespaces.json", "request_counts.json", "logs/acme/api.log"):
        assert modes.pop(name) == 0o600, name
    assert {name: mode for name, mode in modes.items() if mode not in (0o600, 0o700)} == {}
