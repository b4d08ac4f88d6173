"""A micro v3 cluster stand-in: micro v3.19.0's HTTP API gateway (:8080) in front of its ``runtime``,
``auth`` and ``api`` services, behaving as their source does (github.com/micro/micro, tag v3.19.0) for
every call the platform makes. Split by concern:

- :mod:`.gateway`: the gateway's auth rule (token issuer vs ``Micro-Namespace``), its routing of the
  core services in the ``micro`` domain only, the blocklist (``service/api/auth``).
- :mod:`.runtime`: the runtime handler, manager and Kubernetes runtime (``service/runtime``): source
  checked out at ``Service.Version``, Create rewriting, env entries dropped as ``NewDeployment`` drops
  them, secrets intact, logs with timestamp ``"0"`` in the gateway's stream framing, Kubernetes errors as
  the gateway relays them. Pods are local processes running the given command (the liberty it takes).
- :mod:`.auth`: accounts per issuer, JWT tokens, refresh, inspect (``service/auth/handler``).
- :mod:`.source`: how micro fetches a git source (``service/runtime/source/git/git.go``).
- :mod:`.wire`: micro's error shape, jsonpb reading and writing.
- :mod:`.cluster`: the stand-in as a long-lived process of its own, a "cluster" the local cloud's
  regions (``infra/examples/local``) start and stop with Terraform.

The endpoints it serves are the ones the platform calls: ``Runtime.Create``, ``Read``, ``Update``,
``Delete``, ``Logs``; ``Auth.Generate``, ``Token``, ``Inspect``; ``Accounts.List``, ``Delete``,
``ChangeSecret``; ``Api.AddToBlockList``, ``RemoveFromBlockList``, ``ReadBlockList``. Not implemented:
every other service (registry, store, config, broker, events, network, ...) answers 500 ``service not
found`` as an unregistered one does; auth rules (``Rules.*``, not served: every cluster keeps micro's default
public rule); the gRPC proxy (:8081: :class:`NoProxy` answers 501 saying so, so the ``micro`` CLI cannot
be pointed at it); Kubernetes and the Go build (see :mod:`.runtime`'s liberties: a pod is a local
process); TLS. Its state is in memory: a restart starts it empty.

For tests and ``make run`` (``/_stand-in/`` routes, outside micro's paths): ``GET /_stand-in/requests``
(every request: method, path, headers without ``authorization``, the account the token carried, the
body with every secret value masked), ``DELETE`` the same to clear, ``GET /_stand-in/state`` (namespaces,
quotas, policies, services with their status, error and local address). In Python:
:meth:`MicroStandIn.admin_token`, :meth:`~MicroStandIn.fail_next`, :meth:`~MicroStandIn.delay_next`,
:meth:`~MicroStandIn.received`, :meth:`~MicroStandIn.clear`, :meth:`~MicroStandIn.set_status`,
:meth:`~MicroStandIn.add_log`, :meth:`~MicroStandIn.state`, and ``runtime``, ``auth``, ``gateway``.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from localcloud.standins import RawRequest, RawResponse, StandIn
from localcloud.standins.micro.auth import AuthService
from localcloud.standins.micro.gateway import Call, Gateway
from localcloud.standins.micro.runtime import HUMAN, RuntimeService
from localcloud.standins.micro.source import BareReposHost, GitHost, ResolvedHost
from localcloud.standins.micro.wire import MicroError, ok, read

__all__ = ["BareReposHost", "GitHost", "MicroStandIn", "NoProxy", "ResolvedHost"]

ADMIN_TOKEN_TTL = 10 * 365 * 24 * 3600
_SECRET_FIELDS = ("secret", "refresh_token", "token", "new_secret", "old_secret")


class MicroStandIn(StandIn):
    name = "micro stand-in"

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        git_hosts: Mapping[str, GitHost] | None = None,
        workdir: Path | None = None,
        blocklist_enabled: bool = True,
        watch_interval: float = 10.0,
    ) -> None:
        super().__init__(host, port)
        self.auth = AuthService()
        self.gateway = Gateway(self.auth, blocklist_enabled=blocklist_enabled)
        self.runtime = RuntimeService(self.auth, git_hosts or {}, workdir, watch_interval=watch_interval)
        self.lock = threading.Lock()
        self._received: list[dict[str, Any]] = []
        self._failures: list[tuple[int, str | None, str | None]] = []
        self._delays: list[float] = []

    def start(self) -> MicroStandIn:
        super().start()
        self.runtime.start()
        return self

    def stop(self) -> None:
        super().stop()
        self.runtime.stop()

    # ------------------------------------------------------------------ test controls

    def admin_token(self, ttl: float = ADMIN_TOKEN_TTL) -> str:
        """A token of the ``micro`` issuer's default admin (``admin``/``micro``): what the platform uses."""
        return self.auth.admin_token(ttl)

    def fail_next(self, n: int = 1, status: int = 503, detail: str | None = None, endpoint: str | None = None) -> None:
        """The next ``n`` requests (to ``endpoint``, e.g. ``"Create"``, if given) answer ``status`` (a micro
        error), after being recorded."""
        with self.lock:
            self._failures.extend([(status, detail, endpoint)] * n)

    def delay_next(self, seconds: float, n: int = 1) -> None:
        with self.lock:
            self._delays.extend([seconds] * n)

    def received(self, endpoint: str | None = None) -> list[dict[str, Any]]:
        """Recorded requests, oldest first; ``endpoint`` (``"Create"``, ``"Generate"``...) filters on the
        path's last part."""
        with self.lock:
            items = [dict(r) for r in self._received]
        if endpoint is not None:
            items = [r for r in items if r["path"].rsplit("/", 1)[-1] == endpoint]
        return items

    def clear(self) -> None:
        with self.lock:
            self._received.clear()
            self._failures.clear()
            self._delays.clear()

    def set_status(self, namespace: str, name: str, version: str, status: int | str) -> None:
        """Make the service's pod report ``status`` (a number or a name) from now on."""
        value = status if isinstance(status, int) else HUMAN.index(str(status).lower())
        pod = self.runtime.pod(namespace, name, version)
        if pod is None:
            raise KeyError(f"{namespace}/{name}:{version} has no pod")
        pod.status_override = value

    def add_log(self, namespace: str, service: str, message: str) -> None:
        """Append a line to the output of every pod of ``service``."""
        with self.runtime.lock:
            for pod in self.runtime.k8s.pods.values():
                if pod.namespace == namespace and pod.labels["name"] == service:
                    pod.logs.append(message)

    def state(self) -> dict[str, Any]:
        return self.runtime.state()

    # ------------------------------------------------------------------ HTTP

    def handle(self, request: RawRequest) -> RawResponse:
        path = urlsplit(request.target).path
        if path.rstrip("/") == "/_stand-in/requests":
            if request.method == "GET":
                return ok(self.received())
            if request.method == "DELETE":
                with self.lock:
                    self._received.clear()
                return RawResponse(204)
        if path.rstrip("/") == "/_stand-in/state" and request.method == "GET":
            return ok(self.state())
        return self._serve(request, path)

    def _serve(self, request: RawRequest, path: str) -> RawResponse:
        try:
            body: Any = json.loads(request.body) if request.body.strip() else {}
        except ValueError:
            body = request.body.decode("utf-8", errors="replace")
        account = self.auth.inspect(_bearer(request))
        with self.lock:
            self._received.append(
                {
                    "method": request.method,
                    "path": path,
                    "headers": {k: v for k, v in request.headers.items() if k != "authorization"},
                    "account": None if account is None else {"id": account.id, "issuer": account.issuer},
                    "body": _masked(body),
                }
            )
            failure = None
            for index, (status, detail, endpoint) in enumerate(self._failures):
                if endpoint is None or path.rsplit("/", 1)[-1] == endpoint:
                    failure = (status, detail)
                    del self._failures[index]
                    break
            delay = self._delays.pop(0) if self._delays else 0.0
        if delay > 0:
            time.sleep(delay)
        if failure is not None:
            status, detail = failure
            return MicroError(status, detail or "injected failure", "go.micro.client").response()
        admitted = self.gateway.admit(request, path)
        if isinstance(admitted, RawResponse):
            return admitted
        try:
            if not isinstance(body, dict):
                raise MicroError(500, "grpc: error unmarshalling request: not a JSON object", "go.micro.client")
            return self._dispatch(admitted, body)
        except MicroError as error:
            return error.response()

    def _dispatch(self, call: Call, body: dict[str, Any]) -> RawResponse:
        if call.service == "api":
            return self.gateway.api(call, body)
        if call.service == "auth":
            auth, account = self.auth, call.account
            handlers = {
                "Auth.Generate": lambda: auth.generate(account, call.namespace, read("auth.GenerateRequest", body)),
                "Auth.Inspect": lambda: auth.inspect_handler(read("auth.InspectRequest", body)),
                "Auth.Token": lambda: auth.token(read("auth.TokenRequest", body)),
                "Accounts.List": lambda: auth.list_accounts(account, read("auth.ListAccountsRequest", body)),
                "Accounts.Delete": lambda: auth.delete_account(account, read("auth.DeleteAccountRequest", body)),
                "Accounts.ChangeSecret": lambda: auth.change_secret(account, read("auth.ChangeSecretRequest", body)),
            }
            handler = handlers.get(call.endpoint)
            if handler is None:
                raise MicroError(500, f"unknown service auth.{call.endpoint}", "go.micro.client")
            return ok(handler())
        runtime = self.runtime
        operations = {
            "Runtime.Create": ("runtime.CreateRequest", runtime.create),
            "Runtime.Read": ("runtime.ReadRequest", runtime.read),
            "Runtime.Update": ("runtime.UpdateRequest", runtime.update),
            "Runtime.Delete": ("runtime.DeleteRequest", runtime.delete),
            "Runtime.Logs": ("runtime.LogsRequest", runtime.logs),
        }
        operation = operations.get(call.endpoint)
        if operation is None:
            raise MicroError(500, f"unknown service runtime.{call.endpoint}", "go.micro.client")
        message, handler = operation
        return handler(call.account, read(message, body))


def _bearer(request: RawRequest) -> str:
    header = request.headers.get("authorization", "")
    return header[len("Bearer ") :] if header.startswith("Bearer ") else ""


def _masked(body: Any) -> Any:
    """The body as recorded: secret values (``options.secrets``, account secrets, tokens) as ``***``."""
    if not isinstance(body, dict):
        return body
    out = dict(body)
    for key in _SECRET_FIELDS:
        if out.get(key):
            out[key] = "***"
    options = out.get("options")
    if isinstance(options, dict) and isinstance(options.get("secrets"), dict):
        out["options"] = {**options, "secrets": {k: "***" for k in options["secrets"]}}
    return out


class NoProxy(StandIn):
    """Where a cluster's gRPC proxy (``micro proxy``, :8081, the ``micro`` CLI's ``MICRO_PROXY``) would
    listen: the stand-in has none (it emulates the HTTP gateway only), and says so to whatever calls."""

    name = "micro stand-in (no gRPC proxy)"

    def handle(self, request: RawRequest) -> RawResponse:
        message = "the micro stand-in has no gRPC proxy: it emulates micro's HTTP API gateway only\n"
        return RawResponse(501, message.encode(), {"Content-Type": "text/plain; charset=utf-8"})
