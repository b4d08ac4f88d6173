"""A micro runtime stand-in: micro v3's runtime service as its API gateway serves it, in memory.

``POST /runtime/Runtime/{Create|Read|Update|Delete|Logs}`` with a JSON body shaped as micro's
``proto/runtime/runtime.proto`` messages (``CreateRequest {resource, options}``, ``ReadRequest
{options}``, ``UpdateRequest``/``DeleteRequest {resource, options}``, ``LogsRequest {service, stream,
count, since, options, version}``). Bodies are checked as micro's ``jsonpb`` reads them: an unknown
field or a value of the wrong type answers 400 (so ``Resources`` must be spelt ``Memory``, ``CPU``,
``EphemeralStorage`` and a network policy's labels ``allowedlabels``).

- ``Authorization: Bearer <token>`` is required (401 otherwise); ``Micro-Namespace`` must name the
  namespace of the request's options (``options.namespace``, ``micro`` when empty), else 403, as
  micro's namespace authorisation answers; a quota or policy must be in that namespace too (403).
- State: namespaces, each with resource quotas, network policies, services (by name and version,
  status RUNNING = 4 once created) and log records (three per created service).
- Errors are micro's ``{"id", "code", "detail", "status"}``: 404 for an unknown namespace, service,
  quota or policy; 409 for one that exists; 400 for a blank resource or a body jsonpb would refuse.
- ``Read`` answers ``{"services": [{name, version, source, metadata, status}]}``; ``Logs`` answers the
  last ``count`` records ``{timestamp (unix seconds), metadata, message}`` as newline-delimited JSON
  objects (``logs_format = "ndjson"``, as a stream is written), or one JSON array (``"array"``), or
  only the last record as one object (``"object"``).

For tests: ``fail_next(n, status=503, detail=None)`` (the next ``n`` requests answer that status, after
being recorded), ``delay_next(seconds, n=1)`` (the next ``n`` requests wait before being answered),
``set_status``, ``add_log``, ``received()`` (every request: ``method``, ``path``, ``headers`` in lower
case without ``authorization``, ``authenticated`` (whether the bearer token matched) and ``body``,
parsed when it is JSON) and ``clear()``. ``GET /_stand-in/requests`` answers ``received()``,
``DELETE /_stand-in/requests`` clears it, ``GET /_stand-in/state`` dumps the state.
"""

from __future__ import annotations

import hmac
import json
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any, Literal
from urllib.parse import urlsplit

from localcloud.standins import RawRequest, RawResponse, StandIn

__all__ = ["DEFAULT_TOKEN", "MicroRuntimeStandIn"]

JSON_TYPE = "application/json"
DEFAULT_TOKEN = "micro-standin-runtime-token"  # noqa: S105 - a local stand-in's fixed credential
RUNNING = 4
STATUS_NAMES = ("UNKNOWN", "PENDING", "BUILDING", "STARTING", "RUNNING", "STOPPING", "STOPPED", "ERROR")
LogsFormat = Literal["ndjson", "array", "object"]

# Message schemas as runtime.proto declares them: field -> message name, or a scalar kind.
_SCHEMAS: dict[str, dict[str, str]] = {
    "CreateRequest": {"resource": "Resource", "options": "CreateOptions"},
    "UpdateRequest": {"resource": "Resource", "options": "UpdateOptions"},
    "DeleteRequest": {"resource": "Resource", "options": "DeleteOptions"},
    "ReadRequest": {"options": "ReadOptions"},
    "LogsRequest": {
        "service": "string",
        "stream": "bool",
        "count": "int",
        "since": "int",
        "options": "LogsOptions",
        "version": "string",
    },
    "Resource": {
        "namespace": "Namespace",
        "networkpolicy": "NetworkPolicy",
        "service": "Service",
        "resourcequota": "ResourceQuota",
    },
    "Namespace": {"name": "string"},
    "NetworkPolicy": {"allowedlabels": "map", "name": "string", "namespace": "string"},
    "ResourceQuota": {"name": "string", "namespace": "string", "requests": "Resources", "limits": "Resources"},
    "Resources": {"Memory": "int", "CPU": "int", "EphemeralStorage": "int"},
    "Service": {"name": "string", "version": "string", "source": "string", "metadata": "map", "status": "int"},
    "CreateOptions": {
        "command": "strings",
        "args": "strings",
        "env": "strings",
        "output": "string",
        "type": "string",
        "image": "string",
        "namespace": "string",
        "secrets": "map",
        "entrypoint": "string",
        "volumes": "map",
        "instances": "int",
    },
    "UpdateOptions": {"namespace": "string", "entrypoint": "string", "instances": "int"},
    "DeleteOptions": {"namespace": "string"},
    "ReadOptions": {"service": "string", "version": "string", "type": "string", "namespace": "string"},
    "LogsOptions": {"namespace": "string"},
}


class _MicroError(Exception):
    def __init__(self, code: int, detail: str, error_id: str = "go.micro.api") -> None:
        super().__init__(detail)
        self.code = code
        self.detail = detail
        self.error_id = error_id


def _check(message: str, value: Any, path: str) -> None:
    """Raise 400 as jsonpb would refuse ``value`` as ``message``: unknown fields, wrong types."""
    if value is None:
        return
    if not isinstance(value, dict):
        raise _MicroError(400, f"{path or message}: expected an object")
    fields = _SCHEMAS[message]
    for name, item in value.items():
        where = f"{path}.{name}" if path else name
        kind = fields.get(name)
        if kind is None:
            raise _MicroError(400, f'unknown field "{name}" in runtime.{message}')
        if item is None:
            continue
        if kind in _SCHEMAS:
            _check(kind, item, where)
        elif kind == "string" and not isinstance(item, str):
            raise _MicroError(400, f"{where}: expected a string")
        elif kind == "bool" and not isinstance(item, bool):
            raise _MicroError(400, f"{where}: expected a boolean")
        elif kind == "int" and not (
            (isinstance(item, int) and not isinstance(item, bool))
            or (isinstance(item, str) and item.lstrip("-").isdigit())
        ):
            raise _MicroError(400, f"{where}: expected an integer")
        elif kind == "strings" and not (isinstance(item, list) and all(isinstance(s, str) for s in item)):
            raise _MicroError(400, f"{where}: expected a list of strings")
        elif kind == "map" and not (isinstance(item, dict) and all(isinstance(v, str) for v in item.values())):
            raise _MicroError(400, f"{where}: expected a map of strings")


@dataclass
class _Service:
    name: str
    version: str
    source: str
    metadata: dict[str, str]
    status: int | str = RUNNING
    options: dict[str, Any] = field(default_factory=dict)

    def wire(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "version": self.version,
            "source": self.source,
            "metadata": dict(self.metadata),
            "status": self.status,
        }


@dataclass
class _Namespace:
    quotas: dict[str, dict[str, Any]] = field(default_factory=dict)
    policies: dict[str, dict[str, str]] = field(default_factory=dict)
    services: dict[tuple[str, str], _Service] = field(default_factory=dict)
    logs: dict[str, list[dict[str, Any]]] = field(default_factory=dict)


def _error(code: int, detail: str, error_id: str = "go.micro.api") -> RawResponse:
    try:
        phrase = HTTPStatus(code).phrase
    except ValueError:
        phrase = ""
    body = {"id": error_id, "code": code, "detail": detail, "status": phrase}
    return RawResponse(code, json.dumps(body).encode(), {"Content-Type": JSON_TYPE})


def _ok(body: Any) -> RawResponse:
    return RawResponse(200, json.dumps(body).encode(), {"Content-Type": JSON_TYPE})


class MicroRuntimeStandIn(StandIn):
    name = "micro runtime stand-in"

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        token: str = DEFAULT_TOKEN,
        *,
        namespaces: Iterable[str] = (),
        logs_format: LogsFormat = "ndjson",
    ) -> None:
        super().__init__(host, port)
        self.token = token
        self.logs_format: LogsFormat = logs_format
        self.lock = threading.Lock()
        self.namespaces: dict[str, _Namespace] = {ns: _Namespace() for ns in namespaces}
        self._received: list[dict[str, Any]] = []
        self._failures: list[tuple[int, str | None]] = []
        self._delays: list[float] = []

    # ------------------------------------------------------------------ test controls

    def fail_next(self, n: int = 1, status: int = 503, detail: str | None = None) -> None:
        """The next ``n`` runtime requests answer ``status`` (a micro error; ``detail`` if given)."""
        with self.lock:
            self._failures.extend([(status, detail)] * n)

    def delay_next(self, seconds: float, n: int = 1) -> None:
        """The next ``n`` runtime requests wait ``seconds`` before being handled."""
        with self.lock:
            self._delays.extend([seconds] * n)

    def received(self, endpoint: str | None = None) -> list[dict[str, Any]]:
        """Recorded requests, oldest first; ``endpoint`` (``"Create"``...) filters by the path's last part."""
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
        with self.lock:
            self.namespaces[namespace].services[(name, version)].status = status

    def add_log(
        self,
        namespace: str,
        service: str,
        message: str,
        timestamp: int | None = None,
        metadata: dict[str, str] | None = None,
    ) -> None:
        with self.lock:
            records = self.namespaces[namespace].logs.setdefault(service, [])
            records.append(
                {
                    "timestamp": int(time.time()) if timestamp is None else timestamp,
                    "metadata": dict(metadata or {"service": service}),
                    "message": message,
                }
            )

    def state(self) -> dict[str, Any]:
        with self.lock:
            return {
                name: {
                    "quotas": {k: dict(v) for k, v in ns.quotas.items()},
                    "policies": {k: dict(v) for k, v in ns.policies.items()},
                    "services": [s.wire() for s in ns.services.values()],
                    "logs": {k: list(v) for k, v in ns.logs.items()},
                }
                for name, ns in sorted(self.namespaces.items())
            }

    # ------------------------------------------------------------------ HTTP

    def handle(self, request: RawRequest) -> RawResponse:
        path = urlsplit(request.target).path
        if path.rstrip("/") == "/_stand-in/requests":
            if request.method == "GET":
                return _ok(self.received())
            if request.method == "DELETE":
                with self.lock:
                    self._received.clear()
                return RawResponse(204)
        if path.rstrip("/") == "/_stand-in/state" and request.method == "GET":
            return _ok(self.state())
        if not path.startswith("/runtime/Runtime/"):
            return _error(404, "not found")
        return self._runtime(request, path)

    def _runtime(self, request: RawRequest, path: str) -> RawResponse:
        endpoint = path[len("/runtime/Runtime/") :]
        headers = {k: v for k, v in request.headers.items() if k != "authorization"}
        expected = f"Bearer {self.token}"
        authenticated = hmac.compare_digest(request.headers.get("authorization", "").encode(), expected.encode())
        try:
            body: Any = json.loads(request.body) if request.body else {}
        except ValueError:
            body = request.body.decode("utf-8", errors="replace")
        with self.lock:
            self._received.append(
                {
                    "method": request.method,
                    "path": path,
                    "headers": headers,
                    "authenticated": authenticated,
                    "body": body,
                }
            )
            failure = self._failures.pop(0) if self._failures else None
            delay = self._delays.pop(0) if self._delays else 0.0
        if delay > 0:
            time.sleep(delay)
        if failure is not None:
            status, detail = failure
            return _error(status, detail or "injected failure", "runtime.Runtime." + endpoint)
        if request.method != "POST":
            return _error(405, "method not allowed")
        if not authenticated:
            return _error(401, "Unauthorized")
        handler = {
            "Create": self._create,
            "Read": self._read,
            "Update": self._update,
            "Delete": self._delete,
            "Logs": self._logs,
        }.get(endpoint)
        if handler is None:
            return _error(404, f"unknown endpoint Runtime.{endpoint}")
        if not isinstance(body, dict):
            return _error(400, "the body is not a JSON object", "runtime.Runtime." + endpoint)
        try:
            _check(f"{endpoint}Request", body, "")
            namespace = self._authorize(request, body)
            with self.lock:
                return handler(namespace, body)
        except _MicroError as error:
            error_id = error.error_id if error.error_id != "go.micro.api" else "runtime.Runtime." + endpoint
            return _error(error.code, error.detail, error_id)

    def _authorize(self, request: RawRequest, body: dict[str, Any]) -> str:
        options = body.get("options") or {}
        namespace = str(options.get("namespace") or "micro")
        header = request.headers.get("micro-namespace", "")
        if not header:
            raise _MicroError(403, "the Micro-Namespace header is missing")
        if header != namespace:
            raise _MicroError(403, f"forbidden: the request is for namespace {namespace!r}, not {header!r}")
        resource = body.get("resource") or {}
        for kind in ("resourcequota", "networkpolicy"):
            inner = resource.get(kind)
            if inner and (inner.get("namespace") or namespace) != namespace:
                raise _MicroError(403, f"forbidden: the {kind} is not in namespace {namespace!r}")
        return namespace

    # ------------------------------------------------------------------ endpoints (lock held)

    def _ns(self, namespace: str) -> _Namespace:
        ns = self.namespaces.get(namespace)
        if ns is None:
            raise _MicroError(404, f"namespace {namespace} not found")
        return ns

    @staticmethod
    def _resource(body: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        resource = body.get("resource") or {}
        for kind in ("namespace", "networkpolicy", "service", "resourcequota"):
            if resource.get(kind) is not None:
                return kind, resource[kind]
        raise _MicroError(400, "blank resource")

    @staticmethod
    def _named(kind: str, value: dict[str, Any]) -> str:
        name = str(value.get("name") or "")
        if not name:
            raise _MicroError(400, f"missing {kind} name")
        return name

    def _create(self, namespace: str, body: dict[str, Any]) -> RawResponse:
        kind, value = self._resource(body)
        name = self._named(kind, value)
        if kind == "namespace":
            if name != namespace:
                raise _MicroError(403, f"forbidden: cannot create namespace {name!r} from {namespace!r}")
            if name in self.namespaces:
                raise _MicroError(409, f"namespace {name} already exists")
            self.namespaces[name] = _Namespace()
        elif kind == "resourcequota":
            ns = self._ns(namespace)
            if name in ns.quotas:
                raise _MicroError(409, f"resourcequota {name} already exists")
            ns.quotas[name] = {"requests": dict(value.get("requests") or {}), "limits": dict(value.get("limits") or {})}
        elif kind == "networkpolicy":
            ns = self._ns(namespace)
            if name in ns.policies:
                raise _MicroError(409, f"networkpolicy {name} already exists")
            ns.policies[name] = dict(value.get("allowedlabels") or {})
        else:
            ns = self._ns(namespace)
            version = str(value.get("version") or "latest")
            if (name, version) in ns.services:
                raise _MicroError(409, f"service {name}:{version} already exists")
            ns.services[(name, version)] = _Service(
                name,
                version,
                str(value.get("source") or ""),
                dict(value.get("metadata") or {}),
                RUNNING,
                dict(body.get("options") or {}),
            )
            now = int(time.time())
            records = ns.logs.setdefault(name, [])
            for offset, message in (
                (2, f"Starting {name} {version}"),
                (1, f"Server [grpc] Listening on [::]:8080 ({name})"),
                (0, f"Registry [service] Registering node: {name}"),
            ):
                records.append({"timestamp": now - offset, "metadata": {"service": name}, "message": message})
        return _ok({})

    def _update(self, namespace: str, body: dict[str, Any]) -> RawResponse:
        kind, value = self._resource(body)
        name = self._named(kind, value)
        ns = self._ns(namespace)
        if kind == "namespace":
            raise _MicroError(400, "a namespace cannot be updated")
        if kind == "resourcequota":
            if name not in ns.quotas:
                raise _MicroError(404, f"resourcequota {name} not found")
            ns.quotas[name] = {"requests": dict(value.get("requests") or {}), "limits": dict(value.get("limits") or {})}
        elif kind == "networkpolicy":
            if name not in ns.policies:
                raise _MicroError(404, f"networkpolicy {name} not found")
            ns.policies[name] = dict(value.get("allowedlabels") or {})
        else:
            key = (name, str(value.get("version") or "latest"))
            service = ns.services.get(key)
            if service is None:
                raise _MicroError(404, f"service {key[0]}:{key[1]} not found")
            service.source = str(value.get("source") or service.source)
            service.metadata = dict(value.get("metadata") or {})
            service.status = RUNNING
        return _ok({})

    def _delete(self, namespace: str, body: dict[str, Any]) -> RawResponse:
        kind, value = self._resource(body)
        name = self._named(kind, value)
        if kind == "namespace":
            if name != namespace:
                raise _MicroError(403, f"forbidden: cannot delete namespace {name!r} from {namespace!r}")
            self._ns(name)
            del self.namespaces[name]
            return _ok({})
        ns = self._ns(namespace)
        if kind == "resourcequota":
            if ns.quotas.pop(name, None) is None:
                raise _MicroError(404, f"resourcequota {name} not found")
        elif kind == "networkpolicy":
            if ns.policies.pop(name, None) is None:
                raise _MicroError(404, f"networkpolicy {name} not found")
        else:
            key = (name, str(value.get("version") or "latest"))
            if ns.services.pop(key, None) is None:
                raise _MicroError(404, f"service {key[0]}:{key[1]} not found")
        return _ok({})

    def _read(self, namespace: str, body: dict[str, Any]) -> RawResponse:
        options = body.get("options") or {}
        ns = self._ns(namespace)
        wanted_name = options.get("service") or ""
        wanted_version = options.get("version") or ""
        services = [
            s.wire()
            for (name, version), s in sorted(ns.services.items())
            if (not wanted_name or name == wanted_name) and (not wanted_version or version == wanted_version)
        ]
        return _ok({"services": services})

    def _logs(self, namespace: str, body: dict[str, Any]) -> RawResponse:
        ns = self._ns(namespace)
        name = str(body.get("service") or "")
        if not any(service_name == name for service_name, _ in ns.services) and name not in ns.logs:
            raise _MicroError(404, f"service {name} not found")
        count = int(body.get("count") or 0)
        records = list(ns.logs.get(name, []))
        if count > 0:
            records = records[-count:]
        if self.logs_format == "array":
            content = json.dumps(records)
        elif self.logs_format == "object":
            content = json.dumps(records[-1]) if records else ""
        else:
            content = "".join(json.dumps(record) + "\n" for record in records)
        return RawResponse(200, content.encode(), {"Content-Type": JSON_TYPE})
