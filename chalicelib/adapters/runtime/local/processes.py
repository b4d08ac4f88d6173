"""The local runtime's process supervision: launching a service version as a process (its environment
and memory limit), reading its output, noticing its exit, stopping it and its process group, the
health checks of the monitor thread, and stopping what a crashed runtime left running. The rules are in
the package's docstring ("Processes", "Memory", "Health", "After a crash")."""

from __future__ import annotations

import contextlib
import http.client
import os
import resource
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Collection, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from chalicelib.adapters.runtime.local.metering import InstanceLog
from chalicelib.adapters.runtime.local.state import NAME, StateDir
from chalicelib.domain.clock import Clock
from chalicelib.domain.errors import DependencyUnavailableError, ValidationError

Chores = Sequence[tuple[float, Callable[[], None]]]  # (every so many seconds, what to do)

MEMORY_HEADROOM_MIB = 256
STOP_GRACE_SECONDS = 5.0
HEALTH_TIMEOUT_SECONDS = 2.0
UNHEALTHY_AFTER = 3
LAST_OUTPUT_LINES = 20
MAX_LINE_BYTES = 64 * 1024
DEFAULT_PATH = "/usr/local/bin:/usr/bin:/bin"


@dataclass(eq=False)
class Instance:
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

    def instance_record(self, event: str, **extra: Any) -> dict[str, Any]:
        """Its line of ``instances.jsonl`` (``event``: ``start`` or ``stop``)."""
        return {
            "event": event,
            "instance_id": self.instance_id,
            "namespace": self.namespace,
            "service": self.name,
            "version": self.version,
            "deployment_id": self.metadata.get("deployment_id", ""),
            "started_at": self.started_at.isoformat(),
            "stopped_at": None,
            "exit_reason": None,
            "exit_code": None,
            "pid": self.process.pid if self.process is not None else None,
            "process_start": self.process_start,
            **extra,
        }


def describe_exit(code: int) -> str:
    if code < 0:
        try:
            return f"killed by signal {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exited with code {code}"


def memory_limit_mib(metadata: dict[str, str]) -> int | None:
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


def process_start(pid: int, proc: Path = Path("/proc")) -> str | None:
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


def environment(inst: Instance) -> dict[str, str]:
    env = {
        "PATH": _search_path(),
        "HOME": os.environ.get("HOME") or "/tmp",  # noqa: S108 (only when the platform has none)
        "LANG": os.environ.get("LANG") or "C.UTF-8",
        "PYTHONUNBUFFERED": "1",
    }
    if memory_limit_mib(inst.metadata) is not None:
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


def _healthy(port: int, health_path: str | None) -> bool:
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


def _signal_group(process: subprocess.Popen[bytes], sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, sig)


def _log_event(message: str, inst: Instance, **extra: str) -> None:
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


def _in_threads(target: Callable[..., None], args: Sequence[tuple[Any, ...]]) -> None:
    """``target(*a)`` for every ``a`` at once, each in a thread of its own; returns when all have."""
    threads = [threading.Thread(target=target, args=a, daemon=True) for a in args]
    for t in threads:
        t.start()
    for t in threads:
        t.join()


class Supervisor:
    """Launches, watches and stops the runtime's instances. ``lock`` is the runtime's state lock: an
    instance's fields change under it; it is never held while waiting on a process or the network."""

    def __init__(
        self, clock: Clock, lock: threading.RLock, files: StateDir, instance_log: InstanceLog, poll_interval: float
    ) -> None:
        self._clock = clock
        self._state = lock
        self._files = files
        self._instance_log = instance_log
        self._poll_interval = poll_interval
        self.ports_in_use: set[int] = set()  # handed to an instance that may still bind it
        self._closing = threading.Event()
        self._checks: ThreadPoolExecutor | None = None
        self._monitor: threading.Thread | None = None

    def free_port(self, taken: Collection[int]) -> int:
        """A free local port, in use by no instance nor in ``taken``; reserved until released."""
        for _ in range(50):
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
                s.bind(("127.0.0.1", 0))
                port = int(s.getsockname()[1])
            if port not in self.ports_in_use and port not in taken:
                self.ports_in_use.add(port)
                return port
        raise DependencyUnavailableError("no free local port", {})

    def log(self, inst: Instance, message: str) -> None:
        """A line of the runtime's own in the service's log."""
        self._files.append_log(inst.namespace, inst.name, inst.version, message, self._clock.now())

    # ------------------------------------------------------------------ start

    def fail_launch(self, inst: Instance, reason: str) -> None:
        with self._state:
            inst.status = "error"
            inst.error = reason
            self.ports_in_use.discard(inst.port)
        self.log(inst, f"[runtime] {reason}")

    def launch(self, inst: Instance) -> None:
        with inst.launching:
            if inst.stopping:
                return
            root = Path(inst.source)
            cwd = root / (inst.metadata.get("path", ".") or ".")
            if not cwd.is_dir():
                missing = inst.metadata.get("path", ".")
                self.fail_launch(inst, f"failed to start: no directory {missing!r} in the source")
                return
            limit = memory_limit_mib(inst.metadata)
            try:
                process = subprocess.Popen(  # noqa: S603 (argv from the manifest, no shell)
                    inst.command,
                    cwd=cwd,
                    env=environment(inst),
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
                self.fail_launch(inst, f"failed to start: {detail}")
                return
            reader = threading.Thread(
                target=self._read_output, args=(inst, process), name=f"runtime-output-{process.pid}", daemon=True
            )
            started = process_start(process.pid)
            with self._state:
                inst.process = process
                inst.process_start = started
                inst.reader = reader
                self._instance_log.append(inst.instance_record("start"))
            self.log(inst, f"[runtime] started {inst.name} {inst.version} (pid {process.pid}, port {inst.port})")
            reader.start()
        _log_event("service started", inst)

    def _read_output(self, inst: Instance, process: subprocess.Popen[bytes]) -> None:
        stream = process.stdout
        assert stream is not None
        with stream:
            for raw in iter(lambda: stream.readline(MAX_LINE_BYTES), b""):
                line = raw.decode("utf-8", "replace").rstrip("\r\n")
                self.log(inst, line)
                with self._state:
                    inst.last_output.append(line)
        code = process.wait()
        self._on_exit(inst, code)

    def _on_exit(self, inst: Instance, code: int) -> None:
        with self._state:
            if inst.exited:
                return
            inst.exited = True
            inst.exit_code = code
            if inst.stopping:
                return  # the stopper records the stop
            inst.status = "error"
            inst.error = describe_exit(code)
            self.ports_in_use.discard(inst.port)
            self._record_stop(inst, "exited", code)
        self.log(inst, f"[runtime] {describe_exit(code)}")
        _log_event("service exited", inst)

    # ------------------------------------------------------------------ stop

    def _record_stop(self, inst: Instance, reason: str, code: int | None) -> None:
        with self._state:
            if inst.stop_recorded or inst.process is None:
                return
            inst.stop_recorded = True
            stopped_at = self._clock.now().isoformat()
            self._instance_log.append(
                inst.instance_record("stop", stopped_at=stopped_at, exit_reason=reason, exit_code=code)
            )

    def stop(self, inst: Instance, reason: str) -> None:
        """SIGTERM to its process group, SIGKILL after the grace period; returns once it is gone."""
        with self._state:
            inst.stopping = True
        with inst.launching:  # a launch under way finishes first
            process = inst.process
        if process is not None:
            if process.poll() is None:
                _signal_group(process, signal.SIGTERM)
            try:
                process.wait(STOP_GRACE_SECONDS)
            except subprocess.TimeoutExpired:
                _signal_group(process, signal.SIGKILL)
                process.wait()
            _signal_group(process, signal.SIGKILL)  # children left in its group
            if inst.reader is not None:
                inst.reader.join(timeout=2)
        with self._state:
            if inst.status != "error":
                inst.status = "stopped"
            self.ports_in_use.discard(inst.port)
            if process is not None:
                self._record_stop(inst, reason, process.returncode)
        if process is not None:
            self.log(inst, f"[runtime] stopped ({reason})")
            _log_event("service stopped", inst, reason=reason)

    def stop_all(self, instances: list[Instance], reason: str) -> None:
        _in_threads(self.stop, [(i, reason) for i in instances])

    # ------------------------------------------------------------------ after a crash

    def stop_orphans(self, records: list[dict[str, Any]], crashed_at: datetime) -> None:
        """Stops the processes of the start records a crashed runtime left open, and records every stop
        at ``crashed_at`` (see "After a crash" in the package's docstring)."""
        _in_threads(self._stop_orphan, [(r, crashed_at) for r in records])

    def _stop_orphan(self, record: dict[str, Any], crashed_at: datetime) -> None:
        pid, mark = record.get("pid"), record.get("process_start")
        ours = isinstance(pid, int) and pid > 1 and mark is not None and process_start(pid) == mark
        if ours:
            assert isinstance(pid, int)
            for sig, wait in ((signal.SIGTERM, STOP_GRACE_SECONDS), (signal.SIGKILL, STOP_GRACE_SECONDS)):
                for kill in (os.killpg, os.kill):  # its group (children too), and itself if it left the group
                    with contextlib.suppress(ProcessLookupError, PermissionError):
                        kill(pid, sig)
                deadline = time.monotonic() + wait
                while process_start(pid) == mark and time.monotonic() < deadline:
                    time.sleep(0.05)
                if process_start(pid) != mark:
                    break
        try:
            started = datetime.fromisoformat(record["started_at"])
            stopped = max(started, crashed_at)
        except (KeyError, TypeError, ValueError):
            stopped = crashed_at
        stop = {"event": "stop", "stopped_at": stopped.isoformat(), "exit_reason": "runtime_crashed", "exit_code": None}
        self._instance_log.append({**record, **stop})
        namespace, name, version = (str(record.get(k, "")) for k in ("namespace", "service", "version"))
        if NAME.fullmatch(namespace) and NAME.fullmatch(name):
            what = f"stopped its process (pid {pid})" if ours else "its process had ended"
            message = f"[runtime] the runtime that ran it ended unexpectedly; {what}"
            self._files.append_log(namespace, name, version, message, self._clock.now())
        with contextlib.suppress(Exception):
            from chalicelib.logs import get_logger

            get_logger().warning(
                "orphan stopped" if ours else "orphan gone",
                extra={"namespace": namespace, "runtime_service": name, "runtime_version": version, "pid": pid},
            )

    # ------------------------------------------------------------------ health

    def check_health(self, instances: list[Instance]) -> None:
        """One health check of each live instance (at once), and the status changes it brings."""
        with self._state:
            live = [i for i in instances if i.process is not None and not i.stopping and not i.exited]
        if not live or self._checks is None:
            return
        results = list(self._checks.map(lambda i: _healthy(i.port, i.metadata.get("health_path")), live))
        changed: list[Instance] = []
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
            self.log(inst, f"[runtime] {inst.status}" + (f" ({inst.error})" if inst.error else ""))

    def monitor(self, instances: Callable[[], list[Instance]], chores: Chores) -> None:
        """Starts the monitor thread: a health check of ``instances()`` every poll interval, and each
        chore every so many seconds, until ``close``."""
        self._checks = ThreadPoolExecutor(max_workers=8, thread_name_prefix="runtime-health")
        self._monitor = threading.Thread(target=self._monitor_loop, args=(instances, chores), daemon=True)
        self._monitor.name = "runtime-monitor"
        self._monitor.start()

    def _monitor_loop(self, instances: Callable[[], list[Instance]], chores: Chores) -> None:
        last = [0.0] * len(chores)
        elapsed = 0.0
        while not self._closing.wait(self._poll_interval):
            elapsed += self._poll_interval
            try:
                self.check_health(instances())
                for n, (every, chore) in enumerate(chores):
                    if elapsed - last[n] >= every:
                        last[n] = elapsed
                        chore()
            except Exception:  # noqa: S112 (the monitor outlives any one bad check)
                continue

    def close(self) -> None:
        """Ends the monitor thread (waits for it up to 5 s)."""
        self._closing.set()
        if self._monitor is not None:
            self._monitor.join(timeout=5)
        if self._checks is not None:
            self._checks.shutdown(wait=False)
