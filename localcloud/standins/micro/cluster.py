"""A micro stand-in as a cluster of its own: a separate, long-lived process, what the local "cloud"'s
Terraform configuration (``infra/examples/local``) starts and stops, as a cloud's configuration makes a
Kubernetes cluster running micro. It outlives the local cloud that asked for it (a real cluster
outlives the platform's deploys), and it is stopped by ``terraform destroy`` (or by hand, to see the
health check notice).

    python -m localcloud.standins.micro.cluster start --state-dir DIR --github-url URL   # idempotent
    python -m localcloud.standins.micro.cluster stop --state-dir DIR
    python -m localcloud.standins.micro.cluster status --state-dir DIR

``start`` runs ``serve`` detached and waits for ``DIR/addresses.json`` (``{"api", "proxy", "pid"}``).
``serve`` starts the stand-in's HTTP API gateway and the proxy's placeholder on free loopback ports,
makes the platform's admin account in the ``micro`` issuer (``platform``, scope ``admin``, a random
secret; micro then makes no default admin) and keeps its credential in ``DIR/credential.json`` (0600):
the configuration outputs that file's path as ``credentials_secret``, never the secret. Sources on
``github.com`` are fetched from ``--github-url`` as micro fetches them (``{repo}/archive/{ref}.zip``
with ``Authorization: token``; ``service/runtime/source/git/git.go`` ``checkoutGithub``)."""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import secrets
import signal
import subprocess
import sys
import threading
import time
import zipfile
from pathlib import Path

import requests

from localcloud.standins.micro.source import FetchError

ADDRESSES = "addresses.json"
CREDENTIAL = "credential.json"
PID = "pid"
LOG = "cluster.log"
PLATFORM_ACCOUNT = "platform"


class HttpGitHubHost:
    """``github.com`` as micro's ``checkoutGithub`` reaches it: ``GET {base}/{owner}/{name}/archive/{ref}.zip``
    with ``Authorization: token <credential>``, the status unchecked, the zip's one top directory
    stripped (GitHub's archives hold ``<name>-<ref>/``)."""

    def __init__(self, base_url: str) -> None:
        self.base = base_url.rstrip("/")

    def export(self, path: str, ref: str, credential: str | None, dest: Path) -> None:
        headers = {"Authorization": f"token {credential}"} if credential else {}
        try:
            answer = requests.get(f"{self.base}/{path}/archive/{ref}.zip", headers=headers, timeout=60)
        except requests.RequestException as e:
            raise FetchError(f"Can't get zip: {type(e).__name__}") from None
        try:
            archive = zipfile.ZipFile(io.BytesIO(answer.content))
        except zipfile.BadZipFile:
            raise FetchError("zip: not a valid zip file") from None
        dest.mkdir(parents=True, exist_ok=True)
        with archive:
            for info in archive.infolist():
                parts = Path(info.filename).parts[1:]
                if not parts or ".." in parts:
                    continue
                target = dest.joinpath(*parts)
                if info.is_dir():
                    target.mkdir(parents=True, exist_ok=True)
                    continue
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(archive.read(info))
                mode = (info.external_attr >> 16) & 0o777
                if mode:
                    target.chmod(mode)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _running(state: Path) -> dict[str, object] | None:
    try:
        addresses = json.loads((state / ADDRESSES).read_text())
    except (OSError, ValueError):
        return None
    return addresses if _alive(int(addresses.get("pid", 0))) else None


def start(state: Path, github_url: str, host: str, wait: float = 30.0) -> int:
    state.mkdir(parents=True, exist_ok=True, mode=0o700)
    running = _running(state)
    if running is not None:
        print(json.dumps(running))
        return 0
    ports = _previous_ports(state)  # started again after a stop: the same addresses, as a cluster's are
    (state / ADDRESSES).unlink(missing_ok=True)
    log = (state / LOG).open("ab")
    command = [sys.executable, "-m", "localcloud.standins.micro.cluster", "serve", "--state-dir", str(state)]
    command += ["--github-url", github_url, "--host", host, "--api-port", str(ports[0]), "--proxy-port", str(ports[1])]
    root = Path(__file__).resolve().parents[3]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(root), os.environ.get("PYTHONPATH")]))}
    process = subprocess.Popen(  # noqa: S603 - this interpreter, fixed arguments
        command, stdout=log, stderr=log, stdin=subprocess.DEVNULL, start_new_session=True, env=env, cwd=root
    )
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline:
        running = _running(state)
        if running is not None:
            print(json.dumps(running))
            return 0
        if process.poll() is not None:
            break
        time.sleep(0.1)
    tail = (state / LOG).read_text(errors="replace")[-2000:]
    print(f"the micro stand-in cluster did not start:\n{tail}", file=sys.stderr)
    return 1


def _previous_ports(state: Path) -> tuple[int, int]:
    try:
        addresses = json.loads((state / ADDRESSES).read_text())
        return int(str(addresses["api"]).rsplit(":", 1)[1]), int(str(addresses["proxy"]).rsplit(":", 1)[1])
    except (OSError, ValueError, KeyError, IndexError):
        return 0, 0


def stop(state: Path, wait: float = 15.0) -> int:
    """Stop it (its services with it); its addresses stay on record, and ``start`` takes them again."""
    running = _running(state)
    if running is None:
        return 0
    pid = int(running["pid"])  # type: ignore[call-overload]
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + wait
    while _alive(pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    if _alive(pid):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    return 0


def serve(state: Path, github_url: str, host: str, api_port: int = 0, proxy_port: int = 0) -> int:
    from localcloud.standins.micro import MicroStandIn, NoProxy
    from localcloud.standins.micro.auth import DEFAULT_NAMESPACE, Account

    stand_in = MicroStandIn(
        host, _free_or_any(host, api_port), git_hosts={"github.com": HttpGitHubHost(github_url)}, workdir=state / "work"
    )
    (state / "work").mkdir(parents=True, exist_ok=True)
    proxy = NoProxy(host, _free_or_any(host, proxy_port))
    secret = secrets.token_urlsafe(24)
    with stand_in.auth.lock:
        stand_in.auth._create(Account(PLATFORM_ACCOUNT, "user", DEFAULT_NAMESPACE, ["admin"], {}), secret)
    credential = state / CREDENTIAL
    fd = os.open(credential, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump({"id": PLATFORM_ACCOUNT, "secret": secret, "issuer": DEFAULT_NAMESPACE}, f)
    stand_in.start()
    proxy.start()
    stopping = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopping.set())
    signal.signal(signal.SIGINT, lambda *_: stopping.set())
    addresses = {"api": stand_in.url, "proxy": f"{host}:{proxy.port}", "pid": os.getpid()}
    tmp = state / (ADDRESSES + ".tmp")
    tmp.write_text(json.dumps(addresses))
    tmp.rename(state / ADDRESSES)
    (state / PID).write_text(str(os.getpid()))
    print(f"micro stand-in cluster: {json.dumps(addresses)}", flush=True)
    try:
        while not stopping.wait(0.5):
            pass
    finally:
        proxy.stop()
        stand_in.stop()
        (state / PID).unlink(missing_ok=True)
    return 0


def _free_or_any(host: str, port: int) -> int:
    """``port`` when it can be bound now, else 0 (any free port: the addresses change)."""
    import socket

    if not port:
        return 0
    with socket.socket() as probe:
        try:
            probe.bind((host, port))
        except OSError:
            return 0
    return port


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m localcloud.standins.micro.cluster", description=__doc__)
    parser.add_argument("command", choices=("start", "stop", "status", "serve"))
    parser.add_argument("--state-dir", required=True, type=Path)
    parser.add_argument("--github-url", default="http://127.0.0.1:8010")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--api-port", type=int, default=0)
    parser.add_argument("--proxy-port", type=int, default=0)
    args = parser.parse_args(argv)
    state = args.state_dir.resolve()
    if args.command == "start":
        return start(state, args.github_url, args.host)
    if args.command == "stop":
        return stop(state)
    if args.command == "status":
        running = _running(state)
        print(json.dumps(running) if running else "stopped")
        return 0 if running else 3
    return serve(state, args.github_url, args.host, args.api_port, args.proxy_port)


if __name__ == "__main__":
    sys.exit(main())
