"""The local stage's micro runtime: every deployed service version runs as a real local process.

``LocalRuntime`` implements ``RuntimePort`` over the processes of one machine. One runtime owns one
state directory (``LocalRuntime.shared(clock, state_dir)`` answers the same instance each time: it
owns child processes), laid out as:

``namespaces.json``
    namespaces, quotas and network policies, in ``FileBackedRuntime``'s format.
``services.json``
    what runs, rewritten on every change and kept on ``shutdown`` so that ``restore`` relaunches it:
    ``{"format": 1, "proxies": {namespace: port}, "services": [{"namespace", "name", "version",
    "source", "command", "env", "metadata", "secret_names"}]}``. Secret values are never written
    (only their names): ``restore`` asks a callback for them again.
``instances.jsonl``
    one JSON object per line, appended: ``{"event": "start", "instance_id", "namespace", "service",
    "version", "deployment_id", "started_at", "stopped_at": null, "exit_reason": null,
    "exit_code": null, "pid", "process_start"}`` when a process starts, and the same object with
    ``"event": "stop"`` and ``stopped_at``, ``exit_reason`` (``deleted``, ``updated``, ``shutdown``,
    ``namespace_deleted``, ``exited``; ``runtime_crashed``, see "After a crash") and ``exit_code``
    filled when it stops. Exactly one start and at most one stop per ``instance_id`` (a ULID on the
    clock's time). ``instances(namespace)`` merges the two. This is the source of ``service_hours``.
``request_counts.json``
    ``{"format": 2, "counts": {namespace: {service: {hour: requests}}}, "checkpoints": {namespace:
    {"id", "counts": {service: {hour: requests}}}}}``: requests counted by the proxies in each hour
    of the clock, saved every few seconds and on shutdown, kept (also across ``delete_namespace``)
    until collected. Collection is a checkpoint and an acknowledgement (``RuntimeUsagePort``):
    ``checkpoint_requests`` moves what is counted into the namespace's one pending checkpoint and
    saves the file before answering, and answers that same checkpoint again until
    ``ack_requests(id)`` drops it; requests counted meanwhile wait for the next checkpoint.
``logs/<namespace>/<service>.log``
    the stdout and stderr of every version of the service, one line per output line:
    ``<ISO timestamp>\\t<version>\\t<message>``. The runtime's own lines start ``[runtime]``.
``heartbeat``
    the clock's time, rewritten every second while the runtime lives: after a crash, the last time
    the crashed runtime was known alive.
``runtime.lock``
    held (``flock``) by the one runtime that owns the directory and its processes, for its lifetime;
    the kernel releases it when that process dies, however it dies. A second runtime on the same
    directory is refused (``DependencyUnavailableError``) while the first lives.

Every file and directory is created private (files 0600, directories 0700).

After a crash
    A runtime that ends without ``shutdown`` (``kill -9`` of ``make run``) leaves its processes
    running as orphans and their start records open. The next runtime on the directory, once it
    holds the lock and before it starts anything, stops them: a start record without a stop whose
    ``pid`` still runs with the same ``process_start`` (the kernel's start time of the process,
    ``/proc/<pid>/stat`` field 22, or ``ps -o lstart`` without ``/proc``; so a recycled pid is never
    taken for ours) has its process group sent SIGTERM, then SIGKILL after 5 s. Every such record
    gets its stop, ``exit_reason`` ``runtime_crashed`` and ``exit_code`` null, at the crashed
    runtime's last ``heartbeat`` (never before the instance's start): the service was unreachable
    from then on, its proxy having died with that runtime. ``restore`` then starts each recorded
    version afresh, once. Orphans are stopped, not adopted: their output pipes and their proxy died
    with the crashed runtime, and an adopted process could be neither logged nor waited for. (Only
    a group whose leader still runs is signalled: children a service left after its own exit are
    not hunted down.)

Processes
    ``spec.command`` runs without a shell in ``spec.source/metadata["path"]`` in a new session (its
    own process group), with a minimal environment: ``PATH`` of the platform process without the
    platform's own virtualenv, ``HOME`` and ``LANG``, ``PYTHONUNBUFFERED=1``, then ``spec.env``, then
    ``spec.secrets``, then the reserved ``MICRO_NAMESPACE``, ``MICRO_SERVICE``, ``MICRO_VERSION`` and
    ``PORT`` (a service cannot override them). ``PORT`` is a free port the runtime picks (the
    manifest's port, in ``metadata["port"]``, is ignored for binding and answered as
    ``manifest_port``), so two versions run side by side. Nothing of the platform's own environment
    (its credentials, its ``PLATFORM_*``, ``AWS_*``, ``GITHUB_*`` variables, its directories) reaches
    a service. The process runs as the platform's Unix user: what isolates it and what does not is
    in the README ("What the local runtime isolates").

Memory
    ``metadata["memory_mib"]`` is enforced as ``RLIMIT_AS`` (hard and soft) of
    ``memory_mib + 256`` MiB. RLIMIT_AS limits *address space*, not resident memory: an interpreter
    maps shared libraries, thread stacks (8 MiB each) and malloc arenas it never touches, so the
    256 MiB headroom keeps a small service alive while an allocation well past ``memory_mib`` fails
    (Python raises ``MemoryError``, Go and C abort), which ends the process and shows as ``error``.
    With a limit set, ``MALLOC_ARENA_MAX=2`` is added to the environment so glibc does not reserve
    64 MiB of address space per thread. It is a guard against runaway services, not accounting.

Health
    One monitor thread checks every live instance: ``GET http://127.0.0.1:<port><health_path>``
    answering 2xx within 2 s makes it ``running`` (until then ``starting``; without a
    ``health_path`` a TCP connect to the port counts). A process that exits on its own is ``error``
    with ``metadata["error"]`` (``exited with code 1``, ``killed by signal SIGKILL``) and the last
    20 lines of its output in ``metadata["last_output"]``. A ``running`` instance whose check fails
    3 times in a row becomes ``error`` (``unhealthy``) and is left running: it is ``running`` again
    when a check passes. Nothing is restarted automatically; the caller's deadline decides how long
    ``starting`` may last.

Routing
    One reverse proxy per namespace (``proxy.NamespaceProxy``), started with the namespace's first
    service on a port kept in ``services.json`` (the same one after a restart when it is free).
    ``http://<host>:<proxy port>/<service>/<rest>`` goes to the service's newest ``running``
    version (the one started last), so traffic moves to a new version only once it is healthy;
    callers delete the old version themselves. ``metadata["address"]`` is
    ``http://<host>:<proxy port>/<service>``.

Locking: one re-entrant lock guards the state; it is never held while waiting on a process or the
network (launching, stopping and health checks happen outside it)."""

from __future__ import annotations

import atexit
import contextlib
import fcntl
import http.client
import itertools
import json
import os
import re
import resource
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from chalicelib.adapters.memory.local_runtime import FileBackedRuntime
from chalicelib.adapters.runtime.proxy import UNAVAILABLE, UNKNOWN, NamespaceProxy
from chalicelib.domain.clock import Clock
from chalicelib.domain.errors import ConflictError, DependencyUnavailableError, NotFoundError, ValidationError
from chalicelib.domain.ids import new_id
from chalicelib.domain.metering import hour_key
from chalicelib.domain.ports import InstanceRecord, LogRecord, RequestCheckpoint, RuntimeService, ServiceSpec

STATE_FORMAT = 1
COUNTS_FORMAT = 2
MEMORY_HEADROOM_MIB = 256
STOP_GRACE_SECONDS = 5.0
HEALTH_TIMEOUT_SECONDS = 2.0
UNHEALTHY_AFTER = 3
LAST_OUTPUT_LINES = 20
COUNTS_SAVE_SECONDS = 5.0
HEARTBEAT_SECONDS = 1.0
MAX_LINE_BYTES = 64 * 1024
DEFAULT_PATH = "/usr/local/bin:/usr/bin:/bin"
RESERVED_ENV = ("MICRO_NAMESPACE", "MICRO_SERVICE", "MICRO_VERSION", "PORT", "HOST")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")

_shared: dict[str, LocalRuntime] = {}
_shared_lock = threading.Lock()
_atexit_registered = False


def _shutdown_shared() -> None:
    with _shared_lock:
        runtimes = list(_shared.values())
    for runtime in runtimes:
        runtime.shutdown()


@dataclass(eq=False)
class _Instance:
    """One version of one service and (once launched) its process."""

    namespace: str
    name: str
    version: str
    source: str
    command: list[str]
    env: dict[str, str]
    secrets: dict[str, str]
    metadata: dict[str, str]
    seq: int
    instance_id: str
    started_at: datetime
    port: int
    status: str = "starting"
    error: str | None = None
    exit_code: int | None = None
    process: subprocess.Popen[bytes] | None = None
    process_start: str | None = None
    reader: threading.Thread | None = None
    last_output: deque[str] = field(default_factory=lambda: deque(maxlen=LAST_OUTPUT_LINES))
    failures: int = 0
    stopping: bool = False
    exited: bool = False
    stop_recorded: bool = False
    launching: threading.Lock = field(default_factory=threading.Lock)

    def record(self) -> dict[str, Any]:
        """What ``services.json`` keeps of it (never secret values)."""
        return {
            "namespace": self.namespace,
            "name": self.name,
            "version": self.version,
            "source": self.source,
            "command": self.command,
            "env": self.env,
            "metadata": self.metadata,
            "secret_names": sorted(self.secrets),
        }


def _describe_exit(code: int) -> str:
    if code < 0:
        try:
            return f"killed by signal {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exited with code {code}"


def _memory_limit_mib(metadata: dict[str, str]) -> int | None:
    raw = metadata.get("memory_mib", "").strip()
    if not raw:
        return None
    try:
        mib = int(raw)
    except ValueError:
        raise ValidationError("memory_mib must be a whole number of MiB", {"memory_mib": raw}) from None
    if mib <= 0:
        return None
    return mib + MEMORY_HEADROOM_MIB


def _address_space_limiter(limit_mib: int) -> Callable[[], None]:
    limit = limit_mib * 1024 * 1024
    _, hard = resource.getrlimit(resource.RLIMIT_AS)
    if hard != resource.RLIM_INFINITY:
        limit = min(limit, hard)

    def apply() -> None:  # runs in the child between fork and exec
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))

    return apply


def _check_name(kind: str, value: str) -> None:
    if not _NAME.fullmatch(value):
        raise ValidationError(
            f"{kind} name must be letters, digits, '.', '_' or '-' (at most 128)", {kind: value[:140]}
        )


def _clean(value: str) -> str:
    return value.replace("\t", " ").replace("\n", " ").replace("\r", " ")


def _process_start(pid: int, proc: Path = Path("/proc")) -> str | None:
    """What tells process ``pid`` apart from a later process given the same pid: its start time
    (``/proc/<pid>/stat`` field 22, in clock ticks since boot; ``ps -o lstart=`` where there is no
    ``/proc``, as on macOS). None when no such process runs (a zombie counts as gone)."""
    if not (proc / "self").exists():
        return _ps_start(pid)
    try:
        stat = (proc / str(pid) / "stat").read_text()
    except OSError:
        return None
    fields = stat.rpartition(")")[2].split()  # the command, in parentheses, may hold spaces
    if len(fields) < 20 or fields[0] in ("Z", "X"):  # fields[0] is field 3, the state
        return None
    return fields[19]


def _ps_start(pid: int) -> str | None:
    try:
        out = subprocess.run(  # noqa: S603 (fixed argv)
            ["ps", "-o", "stat=", "-o", "lstart=", "-p", str(pid)],  # noqa: S607 (ps from PATH)
            capture_output=True,
            text=True,
            timeout=5,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    state, _, started = out.stdout.strip().partition(" ")
    if out.returncode != 0 or not started.strip() or state.startswith("Z"):
        return None
    return "lstart " + " ".join(started.split())


def _search_path() -> str:
    """The platform's ``PATH`` without its own virtualenv: a service finds the machine's tools, not the
    platform's interpreter and packages (nor where the platform lives)."""
    entries = [e for e in (os.environ.get("PATH") or DEFAULT_PATH).split(os.pathsep) if e]
    if sys.prefix != sys.base_prefix:
        venv = Path(sys.prefix).resolve()
        entries = [e for e in entries if not (venv == Path(e).resolve() or venv in Path(e).resolve().parents)]
    return os.pathsep.join(entries) or DEFAULT_PATH


def _private_dir(path: Path) -> None:
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    path.chmod(0o700)


def _take_lock(path: Path) -> Any:
    """Holds ``flock`` on ``path`` for as long as the answered file is open (not inherited by children)."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    lock = os.fdopen(fd, "r+")
    try:
        fcntl.flock(lock.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        lock.close()
        raise DependencyUnavailableError(
            "another local runtime (another `make run`?) owns this state directory", {"state_dir": str(path.parent)}
        ) from None
    return lock


def _write_private(path: Path, text: str) -> None:
    """Writes ``text`` to ``path`` through a temporary file (0600) renamed into place."""
    tmp = path.with_name(f"{path.name}.tmp{os.getpid()}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    tmp.replace(path)


class LocalRuntime(FileBackedRuntime):
    """``RuntimePort`` over local processes; see the module docstring for the files and rules."""

    def __init__(self, clock: Clock, state_dir: Path, host: str = "127.0.0.1", *, poll_interval: float = 0.2) -> None:
        _private_dir(state_dir)
        self._lock_file = _take_lock(state_dir / "runtime.lock")
        super().__init__(clock, state_dir / "namespaces.json")
        self.state_dir = state_dir
        self.host = host
        self._poll_interval = poll_interval
        self._state = threading.RLock()
        self._services: dict[tuple[str, str, str], _Instance] = {}
        self._proxies: dict[str, NamespaceProxy] = {}
        self._proxy_ports: dict[str, int] = {}
        self._pending: list[dict[str, Any]] = []  # recorded in services.json, not yet restored
        self._ports_in_use: set[int] = set()
        self._seq = itertools.count()
        self._closed = False
        self._counts: dict[str, dict[str, dict[str, int]]] = {}  # namespace -> service -> hour -> requests
        self._checkpoints: dict[str, dict[str, Any]] = {}  # namespace -> {"id", "counts"}
        self._counts_dirty = False
        self._closing = threading.Event()
        self._load_state()
        self.orphans = self._stop_orphans()  # before anything of ours starts
        self._beat()
        self._checks = ThreadPoolExecutor(max_workers=8, thread_name_prefix="runtime-health")
        self._monitor = threading.Thread(target=self._monitor_loop, name="runtime-monitor", daemon=True)
        self._monitor.start()

    # ------------------------------------------------------------------ construction and files

    @classmethod
    def shared(cls, clock: Clock, state_dir: Path, host: str = "127.0.0.1") -> LocalRuntime:
        """The process's one runtime for ``state_dir`` (created on first use, again after ``shutdown``).
        Every shared runtime is shut down when the process exits (``services.json`` is kept)."""
        global _atexit_registered
        key = str(state_dir.resolve())
        with _shared_lock:
            runtime = _shared.get(key)
            if runtime is None or runtime._closed:
                runtime = cls(clock, state_dir, host)
                _shared[key] = runtime
            if not _atexit_registered:
                atexit.register(_shutdown_shared)
                _atexit_registered = True
            return runtime

    @property
    def _services_path(self) -> Path:
        return self.state_dir / "services.json"

    @property
    def _instances_path(self) -> Path:
        return self.state_dir / "instances.jsonl"

    @property
    def _counts_path(self) -> Path:
        return self.state_dir / "request_counts.json"

    def _log_path(self, namespace: str, name: str) -> Path:
        return self.state_dir / "logs" / namespace / f"{name}.log"

    @property
    def _heartbeat_path(self) -> Path:
        return self.state_dir / "heartbeat"

    def _write_json(self, path: Path, data: Any) -> None:
        _write_private(path, json.dumps(data, indent=1, sort_keys=True))

    def _beat(self) -> None:
        _write_private(self._heartbeat_path, self._clock.now().isoformat())

    def _load_state(self) -> None:
        if self._services_path.exists():
            data = json.loads(self._services_path.read_text())
            self._proxy_ports = {ns: int(port) for ns, port in data.get("proxies", {}).items()}
            self._pending = list(data.get("services", []))
        if self._counts_path.exists():
            self._load_counts(json.loads(self._counts_path.read_text()))

    def _save_services(self) -> None:
        with self._state:
            records = [i.record() for i in sorted(self._services.values(), key=lambda i: i.seq)]
            data = {"format": STATE_FORMAT, "proxies": self._proxy_ports, "services": records + self._pending}
            self._write_json(self._services_path, data)

    def _load_counts(self, data: dict[str, Any]) -> None:
        if data.get("format") == COUNTS_FORMAT:
            self._counts = data.get("counts", {})
            self._checkpoints = data.get("checkpoints", {})
        else:  # format 1, {namespace: {service: requests}}: counted before hours were kept
            hour = hour_key(self._clock.now())
            self._counts = {ns: {svc: {hour: int(n)} for svc, n in per_ns.items()} for ns, per_ns in data.items()}

    def _save_counts(self, force: bool = False) -> None:
        with self._state:
            if force or self._counts_dirty or not self._counts_path.exists():
                data = {"format": COUNTS_FORMAT, "counts": self._counts, "checkpoints": self._checkpoints}
                self._write_json(self._counts_path, data)
                self._counts_dirty = False

    def _append_instance_record(self, inst: _Instance, event: str, **extra: Any) -> None:
        record = {
            "event": event,
            "instance_id": inst.instance_id,
            "namespace": inst.namespace,
            "service": inst.name,
            "version": inst.version,
            "deployment_id": inst.metadata.get("deployment_id", ""),
            "started_at": inst.started_at.isoformat(),
            "stopped_at": None,
            "exit_reason": None,
            "exit_code": None,
            "pid": inst.process.pid if inst.process is not None else None,
            "process_start": inst.process_start,
            **extra,
        }
        self._append_record(record)

    def _append_record(self, record: dict[str, Any]) -> None:
        with self._state:
            fd = os.open(self._instances_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            with os.fdopen(fd, "a") as f:
                f.write(json.dumps(record, sort_keys=True) + "\n")

    def _record_stop(self, inst: _Instance, reason: str, code: int | None) -> None:
        with self._state:
            if inst.stop_recorded or inst.process is None:
                return
            inst.stop_recorded = True
            self._append_instance_record(
                inst, "stop", stopped_at=self._clock.now().isoformat(), exit_reason=reason, exit_code=code
            )

    def _stop_orphans(self) -> list[dict[str, Any]]:
        """Stops what a runtime that ended without ``shutdown`` left running, and records every stop;
        answers the records it closed. See "After a crash" in the module docstring."""
        left: dict[str, dict[str, Any]] = {}
        if self._instances_path.exists():
            for line in self._instances_path.read_text().splitlines():
                try:
                    record = json.loads(line)
                except ValueError:
                    continue
                if record.get("event") == "start":
                    left[record["instance_id"]] = record
                elif record.get("event") == "stop":
                    left.pop(record.get("instance_id"), None)
        if not left:
            return []
        detected = self._clock.now()
        try:
            crashed_at = datetime.fromisoformat(self._heartbeat_path.read_text().strip())
        except (OSError, ValueError):
            crashed_at = detected
        records = list(left.values())
        threads = [threading.Thread(target=self._stop_orphan, args=(r, crashed_at), daemon=True) for r in records]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        return records

    def _stop_orphan(self, record: dict[str, Any], crashed_at: datetime) -> None:
        pid, mark = record.get("pid"), record.get("process_start")
        ours = isinstance(pid, int) and pid > 1 and mark is not None and _process_start(pid) == mark
        if ours:
            assert isinstance(pid, int)
            for sig, wait in ((signal.SIGTERM, STOP_GRACE_SECONDS), (signal.SIGKILL, STOP_GRACE_SECONDS)):
                for kill in (os.killpg, os.kill):  # its group (children too), and itself if it left the group
                    with contextlib.suppress(ProcessLookupError, PermissionError):
                        kill(pid, sig)
                deadline = time.monotonic() + wait
                while _process_start(pid) == mark and time.monotonic() < deadline:
                    time.sleep(0.05)
                if _process_start(pid) != mark:
                    break
        try:
            started = datetime.fromisoformat(record["started_at"])
            stopped = max(started, crashed_at)
        except (KeyError, TypeError, ValueError):
            stopped = crashed_at
        stop = {"event": "stop", "stopped_at": stopped.isoformat(), "exit_reason": "runtime_crashed", "exit_code": None}
        self._append_record({**record, **stop})
        namespace, name, version = (str(record.get(k, "")) for k in ("namespace", "service", "version"))
        if _NAME.fullmatch(namespace) and _NAME.fullmatch(name):
            what = f"stopped its process (pid {pid})" if ours else "its process had ended"
            self._append_log_line(
                namespace, name, version, f"[runtime] the runtime that ran it ended unexpectedly; {what}"
            )
        with contextlib.suppress(Exception):
            from chalicelib.logs import get_logger

            get_logger().warning(
                "orphan stopped" if ours else "orphan gone",
                extra={"namespace": namespace, "runtime_service": name, "runtime_version": version, "pid": pid},
            )

    def _append_log(self, inst: _Instance, message: str) -> None:
        self._append_log_line(inst.namespace, inst.name, inst.version, message)

    def _append_log_line(self, namespace: str, name: str, version: str, message: str) -> None:
        path = self._log_path(namespace, name)
        if not path.parent.is_dir():
            _private_dir(path.parent.parent)
            _private_dir(path.parent)
        line = f"{self._clock.now().isoformat()}\t{_clean(version)}\t{message}\n".encode()
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            os.write(fd, line)
        finally:
            os.close(fd)

    def _namespace_exists(self, namespace: str) -> bool:
        with self._file_lock:
            self._load()
            return namespace in self.namespaces

    def _require_namespace(self, namespace: str) -> None:
        if not self._namespace_exists(namespace):
            raise NotFoundError(f"runtime namespace {namespace!r} does not exist", {"namespace": namespace})

    def _check_open(self) -> None:
        if self._closed:
            raise DependencyUnavailableError("the local runtime is shut down", {"state_dir": str(self.state_dir)})

    # ------------------------------------------------------------------ namespaces, quotas, policies

    def delete_quota(self, namespace: str, name: str) -> None:
        self._mutate("delete_quota", namespace, name)

    def delete_network_policy(self, namespace: str, name: str) -> None:
        self._mutate("delete_network_policy", namespace, name)

    def delete_namespace(self, namespace: str) -> None:
        """Stops the namespace's services and proxy and forgets them and their logs (instance records
        and request counts stay, for billing)."""
        with self._state:
            super().delete_namespace(namespace)
            victims = [i for key, i in self._services.items() if key[0] == namespace]
            for inst in victims:
                del self._services[(inst.namespace, inst.name, inst.version)]
            self._pending = [r for r in self._pending if r.get("namespace") != namespace]
            proxy = self._proxies.pop(namespace, None)
            self._proxy_ports.pop(namespace, None)
            self._save_services()
        self._stop_all(victims, "namespace_deleted")
        if proxy is not None:
            proxy.stop()
        logs = self.state_dir / "logs" / namespace
        if _NAME.fullmatch(namespace) and logs.is_dir():
            for path in logs.iterdir():
                path.unlink(missing_ok=True)
            with contextlib.suppress(OSError):
                logs.rmdir()

    # ------------------------------------------------------------------ services

    def _free_port(self) -> int:
        for _ in range(50):
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
                s.bind(("127.0.0.1", 0))
                port = int(s.getsockname()[1])
            if port not in self._ports_in_use and port not in self._proxy_ports.values():
                self._ports_in_use.add(port)
                return port
        raise DependencyUnavailableError("no free local port", {})

    def _new_instance(
        self,
        namespace: str,
        name: str,
        version: str,
        source: str,
        command: list[str],
        env: dict[str, str],
        secrets: dict[str, str],
        metadata: dict[str, str],
    ) -> _Instance:
        with self._state:
            now = self._clock.now()
            return _Instance(
                namespace=namespace,
                name=name,
                version=version,
                source=source,
                command=command,
                env=env,
                secrets=secrets,
                metadata=metadata,
                seq=next(self._seq),
                instance_id=new_id(now),
                started_at=now,
                port=self._free_port(),
            )

    def _validate(self, namespace: str, spec: ServiceSpec) -> None:
        _check_name("namespace", namespace)
        _check_name("service", spec.name)
        if not spec.version or len(spec.version) > 128 or _clean(spec.version) != spec.version:
            raise ValidationError("version must be 1-128 characters without tabs or newlines", {"service": spec.name})
        if not spec.command or not all(isinstance(a, str) and a for a in spec.command):
            raise ValidationError("a service needs a command", {"service": spec.name})
        _memory_limit_mib(spec.metadata)
        sub = spec.metadata.get("path", ".") or "."
        if Path(sub).is_absolute() or ".." in Path(sub).parts:
            raise ValidationError("path must be a subdirectory of the source", {"path": sub})

    def _ensure_proxy(self, namespace: str) -> None:
        with self._state:
            if namespace not in self._proxies:
                proxy = NamespaceProxy.bind(namespace, self, self.host, self._proxy_ports.get(namespace))
                for _ in range(10):  # not on a port just handed to a service that has yet to bind it
                    if proxy.port not in self._ports_in_use:
                        break
                    proxy.stop()
                    proxy = NamespaceProxy.bind(namespace, self, self.host, None)
                self._proxies[namespace] = proxy
                self._proxy_ports[namespace] = proxy.port

    def create_service(self, namespace: str, spec: ServiceSpec) -> None:
        """Starts ``spec.version`` of ``spec.name`` and returns at once (status ``starting``)."""
        self._validate(namespace, spec)
        with self._state:
            self._check_open()
            self._require_namespace(namespace)
            key = (namespace, spec.name, spec.version)
            if key in self._services:
                raise ConflictError(
                    f"service {spec.name}:{spec.version} exists", {"service": spec.name, "version": spec.version}
                )
            inst = self._new_instance(
                namespace,
                spec.name,
                spec.version,
                spec.source,
                list(spec.command),
                dict(spec.env),
                dict(spec.secrets),
                dict(spec.metadata),
            )
            self._services[key] = inst
            self._ensure_proxy(namespace)
            self._save_services()
        self._launch(inst)

    def update_service(self, namespace: str, spec: ServiceSpec) -> None:
        """Restarts that version with the new spec (stops the old process first)."""
        self._validate(namespace, spec)
        with self._state:
            self._check_open()
            self._require_namespace(namespace)
            key = (namespace, spec.name, spec.version)
            old = self._services.get(key)
            if old is None:
                raise NotFoundError(
                    f"service {spec.name}:{spec.version} does not exist",
                    {"service": spec.name, "version": spec.version},
                )
            inst = self._new_instance(
                namespace,
                spec.name,
                spec.version,
                spec.source,
                list(spec.command),
                dict(spec.env),
                dict(spec.secrets),
                dict(spec.metadata),
            )
            self._services[key] = inst
            self._save_services()
        self._stop(old, "updated")
        self._launch(inst)

    def delete_service(self, namespace: str, name: str, version: str) -> None:
        """Stops that version (SIGTERM to its process group, SIGKILL after 5 s) and returns once it is gone."""
        with self._state:
            self._require_namespace(namespace)
            inst = self._services.pop((namespace, name, version), None)
            if inst is None:
                raise NotFoundError(f"service {name}:{version} does not exist", {"service": name, "version": version})
            self._save_services()
        self._stop(inst, "deleted")

    def read_services(self, namespace: str, name: str | None = None) -> list[RuntimeService]:
        with self._state:
            self._require_namespace(namespace)
            found = sorted(
                (i for (ns, n, _), i in self._services.items() if ns == namespace and (name is None or n == name)),
                key=lambda i: (i.name, i.seq),
            )
            return [self._describe(i) for i in found]

    def _describe(self, inst: _Instance) -> RuntimeService:
        metadata = dict(inst.metadata)
        if "port" in inst.metadata:
            metadata["manifest_port"] = inst.metadata["port"]
        proxy_port = self._proxy_ports.get(inst.namespace)
        metadata.update(
            {
                "address": f"http://{self.host}:{proxy_port}/{inst.name}" if proxy_port else "",
                "port": str(inst.port),
                "pid": str(inst.process.pid) if inst.process is not None else "",
                "instance_id": inst.instance_id,
                "started_at": inst.started_at.isoformat(),
                "deployment_id": inst.metadata.get("deployment_id", ""),
            }
        )
        limit = _memory_limit_mib(inst.metadata)
        if limit is not None:
            metadata["memory_limit_mib"] = str(limit)
        if inst.status == "running":
            metadata["health_checked"] = "true"  # running: its health path answered (chalicelib/domain/deploys.py)
        if inst.error is not None:
            metadata["error"] = inst.error
        if inst.exit_code is not None:
            metadata["exit_code"] = str(inst.exit_code)
        if inst.status == "error":
            metadata["last_output"] = "\n".join(inst.last_output)
        return RuntimeService(inst.name, inst.version, inst.source, inst.status, metadata)

    # ------------------------------------------------------------------ processes

    def _environment(self, inst: _Instance) -> dict[str, str]:
        env = {
            "PATH": _search_path(),
            "HOME": os.environ.get("HOME") or "/tmp",  # noqa: S108 (only when the platform has none)
            "LANG": os.environ.get("LANG") or "C.UTF-8",
            "PYTHONUNBUFFERED": "1",
        }
        if _memory_limit_mib(inst.metadata) is not None:
            env["MALLOC_ARENA_MAX"] = "2"
        env.update(inst.env)
        env.update(inst.secrets)
        env.update(
            {
                "MICRO_NAMESPACE": inst.namespace,
                "MICRO_SERVICE": inst.name,
                "MICRO_VERSION": inst.version,
                "PORT": str(inst.port),
                # the address to listen on: loopback only, where the proxy and the health checks reach it
                # (a service that honours $HOST, as examples/hello does, is not on the machine's network)
                "HOST": "127.0.0.1",
            }
        )
        return env

    def _fail_launch(self, inst: _Instance, reason: str) -> None:
        with self._state:
            inst.status = "error"
            inst.error = reason
            self._ports_in_use.discard(inst.port)
        self._append_log(inst, f"[runtime] {reason}")

    def _launch(self, inst: _Instance) -> None:
        with inst.launching:
            if inst.stopping:
                return
            root = Path(inst.source)
            cwd = root / (inst.metadata.get("path", ".") or ".")
            if not cwd.is_dir():
                self._fail_launch(
                    inst, f"failed to start: no directory {inst.metadata.get('path', '.')!r} in the source"
                )
                return
            limit = _memory_limit_mib(inst.metadata)
            try:
                process = subprocess.Popen(  # noqa: S603 (argv from the manifest, no shell)
                    inst.command,
                    cwd=cwd,
                    env=self._environment(inst),
                    stdin=subprocess.DEVNULL,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,  # os.setsid(): its own process group, signalled as one
                    # setrlimit only (no locks, no imports) between fork and exec: safe with threads
                    preexec_fn=_address_space_limiter(limit) if limit is not None else None,
                    close_fds=True,
                )
            except (OSError, ValueError, subprocess.SubprocessError) as exc:
                detail = exc.strerror if isinstance(exc, OSError) and exc.strerror else type(exc).__name__
                self._fail_launch(inst, f"failed to start: {detail}")
                return
            reader = threading.Thread(
                target=self._read_output, args=(inst, process), name=f"runtime-output-{process.pid}", daemon=True
            )
            started = _process_start(process.pid)
            with self._state:
                inst.process = process
                inst.process_start = started
                inst.reader = reader
                self._append_instance_record(inst, "start")
            self._append_log(
                inst, f"[runtime] started {inst.name} {inst.version} (pid {process.pid}, port {inst.port})"
            )
            reader.start()
        self._log_event("service started", inst)

    def _read_output(self, inst: _Instance, process: subprocess.Popen[bytes]) -> None:
        stream = process.stdout
        assert stream is not None
        with stream:
            for raw in iter(lambda: stream.readline(MAX_LINE_BYTES), b""):
                line = raw.decode("utf-8", "replace").rstrip("\r\n")
                self._append_log(inst, line)
                with self._state:
                    inst.last_output.append(line)
        code = process.wait()
        self._on_exit(inst, code)

    def _on_exit(self, inst: _Instance, code: int) -> None:
        with self._state:
            if inst.exited:
                return
            inst.exited = True
            inst.exit_code = code
            if inst.stopping:
                return  # the stopper records the stop
            inst.status = "error"
            inst.error = _describe_exit(code)
            self._ports_in_use.discard(inst.port)
            self._record_stop(inst, "exited", code)
        self._append_log(inst, f"[runtime] {_describe_exit(code)}")
        self._log_event("service exited", inst)

    def _signal_group(self, process: subprocess.Popen[bytes], sig: signal.Signals) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(process.pid, sig)

    def _stop(self, inst: _Instance, reason: str) -> None:
        with self._state:
            inst.stopping = True
        with inst.launching:  # a launch under way finishes first
            process = inst.process
        if process is not None:
            if process.poll() is None:
                self._signal_group(process, signal.SIGTERM)
            try:
                process.wait(STOP_GRACE_SECONDS)
            except subprocess.TimeoutExpired:
                self._signal_group(process, signal.SIGKILL)
                process.wait()
            self._signal_group(process, signal.SIGKILL)  # children left in its group
            if inst.reader is not None:
                inst.reader.join(timeout=2)
        with self._state:
            if inst.status != "error":
                inst.status = "stopped"
            self._ports_in_use.discard(inst.port)
            if process is not None:
                self._record_stop(inst, reason, process.returncode)
        if process is not None:
            self._append_log(inst, f"[runtime] stopped ({reason})")
            self._log_event("service stopped", inst, reason=reason)

    def _stop_all(self, instances: list[_Instance], reason: str) -> None:
        threads = [threading.Thread(target=self._stop, args=(i, reason), daemon=True) for i in instances]
        for t in threads:
            t.start()
        for t in threads:
            t.join()

    def _log_event(self, message: str, inst: _Instance, **extra: str) -> None:
        try:
            from chalicelib.logs import get_logger

            # Tenant secrets are never put in a log line here, and are not registered with the
            # process-wide mask either (a tenant could otherwise garble every namespace's logs).
            get_logger().info(
                message,
                extra={
                    "namespace": inst.namespace,
                    "runtime_service": inst.name,
                    "runtime_version": inst.version,
                    "instance_id": inst.instance_id,
                    "status": inst.status,
                    **extra,
                },
            )
        except Exception:  # noqa: S110 (logging never breaks the runtime)
            pass

    # ------------------------------------------------------------------ health

    def _healthy(self, port: int, health_path: str | None) -> bool:
        try:
            if not health_path:
                with socket.create_connection(("127.0.0.1", port), timeout=HEALTH_TIMEOUT_SECONDS):
                    return True
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=HEALTH_TIMEOUT_SECONDS)
            try:
                conn.request("GET", health_path if health_path.startswith("/") else "/" + health_path)
                response = conn.getresponse()
                response.read()
                return 200 <= response.status < 300
            finally:
                conn.close()
        except (OSError, http.client.HTTPException):
            return False

    def _check_health(self) -> None:
        with self._state:
            live = [i for i in self._services.values() if i.process is not None and not i.stopping and not i.exited]
        if not live:
            return
        results = list(self._checks.map(lambda i: self._healthy(i.port, i.metadata.get("health_path")), live))
        changed: list[_Instance] = []
        with self._state:
            for inst, ok in zip(live, results, strict=True):
                if inst.stopping or inst.exited:
                    continue
                if ok:
                    inst.failures = 0
                    if inst.status != "running":
                        inst.status = "running"
                        inst.error = None
                        changed.append(inst)
                elif inst.status == "running":
                    inst.failures += 1
                    if inst.failures >= UNHEALTHY_AFTER:
                        inst.status = "error"
                        inst.error = "unhealthy"
                        changed.append(inst)
        for inst in changed:
            self._append_log(inst, f"[runtime] {inst.status}" + (f" ({inst.error})" if inst.error else ""))

    def _monitor_loop(self) -> None:
        last_save = last_beat = 0.0
        elapsed = 0.0
        while not self._closing.wait(self._poll_interval):
            elapsed += self._poll_interval
            try:
                self._check_health()
                if elapsed - last_beat >= HEARTBEAT_SECONDS:
                    last_beat = elapsed
                    self._beat()
                if elapsed - last_save >= COUNTS_SAVE_SECONDS:
                    last_save = elapsed
                    self._save_counts()
            except Exception:  # noqa: S112 (the monitor outlives any one bad check)
                continue

    # ------------------------------------------------------------------ proxy

    def route(self, namespace: str, service: str) -> int | str:
        """For the proxy: the port of the newest running version of ``service``; counts the request."""
        with self._state:
            versions = [i for (ns, n, _), i in self._services.items() if ns == namespace and n == service]
            if not versions:
                return UNKNOWN
            running = [i for i in versions if i.status == "running"]
            if not running:
                return UNAVAILABLE
            target = max(running, key=lambda i: i.seq)
            per_service = self._counts.setdefault(namespace, {}).setdefault(service, {})
            hour = hour_key(self._clock.now())
            per_service[hour] = per_service.get(hour, 0) + 1
            self._counts_dirty = True
            return target.port

    def proxy_address(self, namespace: str) -> str | None:
        """``http://<host>:<port>`` of the namespace's proxy, once it has one."""
        with self._state:
            port = self._proxy_ports.get(namespace)
            return f"http://{self.host}:{port}" if port else None

    def request_counts(self, namespace: str) -> dict[str, int]:
        """Requests the proxy forwarded to each service and no checkpoint has taken yet."""
        with self._state:
            return {svc: sum(hours.values()) for svc, hours in self._counts.get(namespace, {}).items()}

    def consume_request_counts(self, namespace: str, counts: dict[str, int]) -> None:
        """Subtracts what a caller has reported, oldest hours first (so requests counted meanwhile are
        kept), and saves."""
        with self._state:
            per_ns = self._counts.get(namespace, {})
            for service, n in counts.items():
                hours = per_ns.get(service, {})
                for hour in sorted(hours):
                    taken = min(n, hours[hour])
                    hours[hour] -= taken
                    n -= taken
                    if hours[hour] <= 0:
                        del hours[hour]
                if not hours:
                    per_ns.pop(service, None)
            if not per_ns:
                self._counts.pop(namespace, None)
            self._save_counts(force=True)

    # ------------------------------------------------------------------ usage (RuntimeUsagePort)

    def checkpoint_requests(self, namespace: str) -> RequestCheckpoint | None:
        """The namespace's pending checkpoint, or a new one holding every request counted so far
        (saved before it is answered); None when nothing was counted."""
        with self._state:
            checkpoint = self._checkpoints.get(namespace)
            if checkpoint is None:
                counted = self._counts.pop(namespace, None)
                if not counted:
                    return None
                checkpoint = {"id": new_id(self._clock.now()), "counts": counted}
                self._checkpoints[namespace] = checkpoint
                self._save_counts(force=True)
            counts = {(svc, hour): int(n) for svc, hours in checkpoint["counts"].items() for hour, n in hours.items()}
            return RequestCheckpoint(str(checkpoint["id"]), counts)

    def ack_requests(self, namespace: str, checkpoint_id: str) -> None:
        """Drops the checkpoint once it is ingested (another id, or none pending: nothing happens)."""
        with self._state:
            checkpoint = self._checkpoints.get(namespace)
            if checkpoint is not None and checkpoint["id"] == checkpoint_id:
                del self._checkpoints[namespace]
                self._save_counts(force=True)

    def instance_records(self, namespace: str, since: datetime) -> list[InstanceRecord]:
        """The namespace's instances that ran at or after ``since`` (from ``instances.jsonl``)."""
        found = []
        for r in self.instances(namespace):
            stopped = datetime.fromisoformat(r["stopped_at"]) if r.get("stopped_at") else None
            if stopped is not None and stopped < since:
                continue
            found.append(
                InstanceRecord(r["instance_id"], r["service"], datetime.fromisoformat(r["started_at"]), stopped)
            )
        return found

    # ------------------------------------------------------------------ logs and records

    def logs(self, namespace: str, name: str, *, since: datetime | None = None, tail: int = 100) -> Iterator[LogRecord]:
        self._require_namespace(namespace)
        if tail <= 0 or not _NAME.fullmatch(namespace) or not _NAME.fullmatch(name):
            return iter([])
        path = self._log_path(namespace, name)
        if not path.exists():
            return iter([])
        kept: deque[LogRecord] = deque(maxlen=tail)
        with path.open(encoding="utf-8", errors="replace") as f:
            for line in f:
                parts = line.rstrip("\n").split("\t", 2)
                if len(parts) != 3:
                    continue
                try:
                    when = datetime.fromisoformat(parts[0])
                except ValueError:
                    continue
                if since is not None and when < since:
                    continue
                kept.append(LogRecord(when, parts[2], {"version": parts[1]}))
        return iter(list(kept))

    def instances(self, namespace: str) -> list[dict[str, Any]]:
        """Every instance of the namespace's services, in start order: the start record with
        ``stopped_at``, ``exit_reason`` and ``exit_code`` from its stop record (``None`` while running)."""
        merged: dict[str, dict[str, Any]] = {}
        with self._state:
            if not self._instances_path.exists():
                return []
            lines = self._instances_path.read_text().splitlines()
        for line in lines:
            try:
                record = json.loads(line)
            except ValueError:
                continue
            if record.get("namespace") != namespace:
                continue
            event = record.pop("event", None)
            current = merged.setdefault(record["instance_id"], record)
            if event == "stop":
                current.update(
                    stopped_at=record["stopped_at"], exit_reason=record["exit_reason"], exit_code=record["exit_code"]
                )
        return list(merged.values())

    # ------------------------------------------------------------------ lifecycle

    def restore(self, secrets_for: Callable[[str, str], dict[str, str]] | None = None) -> list[tuple[str, str, str]]:
        """Relaunches every version recorded in ``services.json`` by an earlier runtime (once), getting
        secrets from ``secrets_for(namespace, service)``; answers the ``(namespace, service, version)``
        relaunched. A record whose namespace is gone is dropped; one whose secrets cannot be had is
        kept as ``error``."""
        with self._state:
            self._check_open()
            pending = list(self._pending)
        launched: list[tuple[str, str, str]] = []
        for record in pending:
            namespace, name, version = record["namespace"], record["name"], record["version"]
            secrets: dict[str, str] = {}
            failure: str | None = None
            if secrets_for is not None:
                try:
                    secrets = dict(secrets_for(namespace, name))
                except Exception as exc:
                    failure = f"secrets unavailable: {type(exc).__name__}"
            with self._state:
                if record not in self._pending:
                    continue  # its namespace was deleted meanwhile
                self._pending.remove(record)
                if not self._namespace_exists(namespace) or (namespace, name, version) in self._services:
                    self._save_services()
                    continue
                inst = self._new_instance(
                    namespace,
                    name,
                    version,
                    record["source"],
                    list(record["command"]),
                    dict(record["env"]),
                    secrets,
                    dict(record["metadata"]),
                )
                self._services[(namespace, name, version)] = inst
                self._ensure_proxy(namespace)
                self._save_services()
            if failure is not None:
                self._fail_launch(inst, failure)
                continue
            self._launch(inst)
            launched.append((namespace, name, version))
        return launched

    def shutdown(self) -> None:
        """Stops every process (``exit_reason`` ``shutdown``) and proxy, saves the request counts and
        keeps ``services.json`` for ``restore``. The runtime is unusable afterwards."""
        with self._state:
            if self._closed:
                return
            self._closed = True
            victims = list(self._services.values())
            proxies = list(self._proxies.values())
            self._proxies.clear()
        self._closing.set()
        self._monitor.join(timeout=5)
        self._stop_all(victims, "shutdown")
        for proxy in proxies:
            proxy.stop()
        self._save_counts(force=True)
        self._checks.shutdown(wait=False)
        self._lock_file.close()  # the next runtime may own the directory now
        with _shared_lock:
            for key, runtime in list(_shared.items()):
                if runtime is self:
                    del _shared[key]
