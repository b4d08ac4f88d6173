"""The ``RuntimePort`` over micro v3's runtime service, through the micro API gateway of a cluster.

Every call is ``POST {proxy}/runtime/Runtime/{Create|Read|Update|Delete|Logs}`` with a JSON body and
the headers ``Micro-Namespace: <namespace>``, ``Authorization: Bearer <token>`` and
``Content-Type: application/json``.

Wire shapes (micro/micro ``proto/runtime/runtime.proto``, v3):

- ``CreateRequest {resource, options}``, ``UpdateRequest {resource, options}``,
  ``DeleteRequest {resource, options}``; ``Resource`` holds one of ``namespace {name}``,
  ``networkpolicy {allowedlabels, name, namespace}``, ``service {name, version, source, metadata}``,
  ``resourcequota {name, namespace, requests, limits}``; ``Resources {Memory, CPU, EphemeralStorage}``.
- ``CreateOptions {command (repeated), args (repeated), env (repeated "K=V"), type, image, namespace,
  secrets (map), entrypoint}``; ``UpdateOptions {namespace, entrypoint, instances}``;
  ``DeleteOptions {namespace}``.
- ``ReadRequest {options {service, version, type, namespace}}`` answers ``{services: [Service]}`` where
  ``Service.status`` is an ``int32`` (micro's ``runtime.ServiceStatus``).
- ``LogsRequest {service, stream, count, since, options {namespace}, version}`` streams ``LogRecord
  {timestamp (int64 unix seconds), metadata, message}``.

Field names: micro's JSON codec reads a request with ``jsonpb`` (which accepts the proto field name or
its lowerCamel JSON name, and rejects unknown fields) and writes answers with ``encoding/json`` over
the generated structs, whose tags are the proto field names. The proto field names are therefore the
only spelling that is right in both directions. They are used as declared: ``allowedlabels`` (one
word, not ``allowed_labels``/``allowedLabels``) and, in ``Resources``, ``Memory``, ``CPU`` and
``EphemeralStorage`` (capitalised in the proto; their lowerCamel JSON names are the same strings, so
``memory``/``ephemeral_storage`` would be unknown fields).

Every request carries ``options.namespace`` as well as the header: micro's handlers authorise the
namespace in the options (defaulting to ``micro`` when it is empty), not the header.

Statuses (micro ``ServiceStatus``: UNKNOWN=0, PENDING=1, BUILDING=2, STARTING=3, RUNNING=4,
STOPPING=5, STOPPED=6, ERROR=7; accepted as a number, a numeric string or a name) map to the
platform's: UNKNOWN, PENDING, BUILDING, STARTING -> ``starting``; RUNNING -> ``running``;
STOPPING, STOPPED -> ``stopped``; ERROR -> ``error``. A missing status (``encoding/json`` omits a zero)
falls back to ``metadata["status"]`` (micro copies the humanised status there), else ``starting``.

Errors (micro's body ``{"id", "code", "detail", "status"}``): 404 -> ``NotFoundError``; 409, or any
answer whose detail says "already exists" (micro answers a second service Create with 500
"already exists") -> ``ConflictError``; a 5xx from a ``runtime.*`` handler whose detail says
"not found" -> ``NotFoundError``; 400/422 -> ``ValidationError``; 401/403 -> ``DependencyUnavailableError``
(code ``runtime_credential_refused``: it is the platform's credential that was refused, not the user's);
5xx, 429, timeouts and connection errors -> retried, then ``DependencyUnavailableError``.

Retries (exponential backoff ``backoff * 2**k``, at most ``retries`` retries after the first attempt):
calls that are safe to repeat (Read, Logs, every Delete, Create/Update of a namespace, a quota or a
network policy) are retried on 5xx, 429, timeouts and connection errors; a service Create or Update
(which starts a build and a rollout) only when the request was never sent (connection refused,
connect timeout) or answered 429. After an attempt whose outcome is unknown (a 5xx or a lost answer),
a Delete answered 404 or a namespace Create answered "already exists" is taken as done.

The token goes only into the ``Authorization`` header: no error message, detail or log line holds it
(it is also registered with the log redaction).
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Iterator, Mapping
from datetime import UTC, datetime
from http import HTTPStatus
from typing import Any, Literal

import requests
from urllib3.exceptions import ConnectTimeoutError, NewConnectionError

from chalicelib.domain.errors import (
    ConflictError,
    DependencyUnavailableError,
    NotFoundError,
    PlatformError,
    ValidationError,
)
from chalicelib.domain.ports import LogRecord, ResourceQuota, RuntimeService, ServiceSpec

__all__ = ["PLATFORM_STATUS", "SERVICE_STATUS_NAMES", "MicroRuntime", "parse_log_records", "platform_status"]

log = logging.getLogger("platform.runtime.micro")

Endpoint = Literal["Create", "Read", "Update", "Delete", "Logs"]
RetryPolicy = Literal["safe", "unsent"]

#: micro's ``runtime.ServiceStatus``, by value.
SERVICE_STATUS_NAMES = ("UNKNOWN", "PENDING", "BUILDING", "STARTING", "RUNNING", "STOPPING", "STOPPED", "ERROR")

#: micro status name -> the platform's status.
PLATFORM_STATUS: Mapping[str, str] = {
    "UNKNOWN": "starting",
    "PENDING": "starting",
    "BUILDING": "starting",
    "STARTING": "starting",
    "RUNNING": "running",
    "STOPPING": "stopped",
    "STOPPED": "stopped",
    "ERROR": "error",
}

_MAX_BACKOFF = 30.0
_RETRYABLE_FOR_UNSENT = frozenset({429})


def platform_status(status: Any, metadata: Mapping[str, str] | None = None) -> str:
    """micro's service status (a number, a numeric string or a name) as the platform's."""
    name: str | None = None
    if isinstance(status, bool):
        status = None
    if isinstance(status, int):
        name = SERVICE_STATUS_NAMES[status] if 0 <= status < len(SERVICE_STATUS_NAMES) else "UNKNOWN"
    elif isinstance(status, str) and status.strip():
        text = status.strip()
        if text.lstrip("-").isdigit():
            return platform_status(int(text), metadata)
        name = text.upper()
    if name is None or name == "UNKNOWN":
        fallback = (metadata or {}).get("status", "")
        if fallback and fallback.upper() != "UNKNOWN":
            return PLATFORM_STATUS.get(fallback.upper(), "starting")
        return "starting"
    return PLATFORM_STATUS.get(name, "starting")


def _timestamp(value: Any) -> datetime:
    """A ``LogRecord.timestamp``: int64 unix seconds (a number, or a string as jsonpb writes int64)."""
    if isinstance(value, str):
        text = value.strip()
        if not text.lstrip("-").isdigit():
            try:
                parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
            except ValueError:
                return datetime.fromtimestamp(0, UTC)
            return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
        value = int(text)
    if not isinstance(value, int | float) or isinstance(value, bool):
        return datetime.fromtimestamp(0, UTC)
    seconds = float(value)
    if seconds > 1e14:  # nanoseconds
        seconds /= 1e9
    elif seconds > 1e11:  # milliseconds
        seconds /= 1e3
    return datetime.fromtimestamp(seconds, UTC)


def _record(item: Any) -> LogRecord | None:
    if isinstance(item, dict) and isinstance(item.get("result"), dict):  # a gateway's stream envelope
        item = item["result"]
    if not isinstance(item, dict):
        return None
    metadata = item.get("metadata") or {}
    return LogRecord(
        timestamp=_timestamp(item.get("timestamp", 0)),
        message=str(item.get("message") or ""),
        metadata={str(k): str(v) for k, v in metadata.items()} if isinstance(metadata, dict) else {},
    )


def parse_log_records(text: str) -> list[LogRecord]:
    """``LogRecord``s from a Logs answer: one JSON object, a JSON array of them, or a sequence of
    objects (newline-delimited, as Go's ``json.Encoder`` writes a stream, or simply concatenated)."""
    decoder = json.JSONDecoder()
    items: list[Any] = []
    position, end = 0, len(text)
    while position < end:
        while position < end and text[position] in " \t\r\n,":
            position += 1
        if position >= end:
            break
        try:
            value, position = decoder.raw_decode(text, position)
        except json.JSONDecodeError as error:
            raise ValueError(f"not a JSON log record at offset {position}") from error
        if isinstance(value, list):
            items.extend(value)
        elif isinstance(value, dict) and isinstance(value.get("records"), list):
            items.extend(value["records"])
        else:
            items.append(value)
    return [record for record in (_record(item) for item in items) if record is not None]


def _never_sent(error: requests.RequestException) -> bool:
    """Whether the request certainly never reached the server (no connection was made)."""
    if isinstance(error, requests.exceptions.ConnectTimeout):
        return True
    if not isinstance(error, requests.exceptions.ConnectionError):
        return False
    reason: Any = error.args[0] if error.args else None
    inner = getattr(reason, "reason", reason)
    return isinstance(inner, NewConnectionError | ConnectTimeoutError)


class MicroRuntime:
    """One cluster's micro runtime, through its API gateway (``proxy_address``), with the platform's
    runtime credential (``token``)."""

    def __init__(
        self,
        proxy_address: str,
        token: str,
        *,
        timeout: float = 10,
        retries: int = 3,
        backoff: float = 0.5,
        session: requests.Session | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        address = proxy_address.strip().rstrip("/")
        if not address:
            raise ValueError("a micro proxy address is required")
        self.proxy = address if "://" in address else f"https://{address}"
        self._token = token
        self._timeout = timeout
        self._retries = max(0, retries)
        self._backoff = max(0.0, backoff)
        self._session = session or requests.Session()
        self._sleep = sleep
        from chalicelib.logs import register_secret

        register_secret(token)

    def __repr__(self) -> str:
        return f"MicroRuntime({self.proxy!r})"

    # ------------------------------------------------------------------ namespaces

    def create_namespace(self, namespace: str) -> None:
        self._call(
            "Create",
            namespace,
            {"resource": {"namespace": {"name": namespace}}, "options": {"namespace": namespace}},
            subject=f"runtime namespace {namespace!r}",
            done_if=ConflictError,
        )

    def delete_namespace(self, namespace: str) -> None:
        self._call(
            "Delete",
            namespace,
            {"resource": {"namespace": {"name": namespace}}, "options": {"namespace": namespace}},
            subject=f"runtime namespace {namespace!r}",
            done_if=NotFoundError,
        )

    # ------------------------------------------------------------------ quotas and policies

    def set_quota(self, namespace: str, name: str, requests: ResourceQuota, limits: ResourceQuota) -> None:
        resource = {
            "resourcequota": {
                "name": name,
                "namespace": namespace,
                "requests": _resources(requests),
                "limits": _resources(limits),
            }
        }
        self._upsert(namespace, resource, f"resource quota {name!r} in runtime namespace {namespace!r}")

    def delete_quota(self, namespace: str, name: str) -> None:
        resource = {"resourcequota": {"name": name, "namespace": namespace}}
        self._delete_absent_ok(namespace, resource, f"resource quota {name!r} in runtime namespace {namespace!r}")

    def set_network_policy(self, namespace: str, name: str, allowed_labels: dict[str, str]) -> None:
        resource = {
            "networkpolicy": {
                "name": name,
                "namespace": namespace,
                "allowedlabels": {str(k): str(v) for k, v in allowed_labels.items()},
            }
        }
        self._upsert(namespace, resource, f"network policy {name!r} in runtime namespace {namespace!r}")

    def delete_network_policy(self, namespace: str, name: str) -> None:
        resource = {"networkpolicy": {"name": name, "namespace": namespace}}
        self._delete_absent_ok(namespace, resource, f"network policy {name!r} in runtime namespace {namespace!r}")

    def _upsert(self, namespace: str, resource: dict[str, Any], subject: str) -> None:
        """Create; when it exists already, Update (the wanted state either way)."""
        body = {"resource": resource, "options": {"namespace": namespace}}
        try:
            self._call("Create", namespace, body, subject=subject)
        except ConflictError:
            self._call("Update", namespace, body, subject=subject)

    def _delete_absent_ok(self, namespace: str, resource: dict[str, Any], subject: str) -> None:
        """Delete; one that is not there is deleted already (as the in-memory runtime has it)."""
        try:
            self._call(
                "Delete", namespace, {"resource": resource, "options": {"namespace": namespace}}, subject=subject
            )
        except NotFoundError:
            return

    # ------------------------------------------------------------------ services

    def create_service(self, namespace: str, spec: ServiceSpec) -> None:
        body = {
            "resource": {"service": _service(spec)},
            "options": {
                "command": [str(part) for part in spec.command],
                "args": [],
                "env": [f"{key}={value}" for key, value in sorted(spec.env.items())],
                "type": "",
                "image": "",
                "namespace": namespace,
                "secrets": dict(spec.secrets),
                "entrypoint": "",
            },
        }
        self._call(
            "Create", namespace, body, subject=_service_subject(namespace, spec.name, spec.version), retry="unsent"
        )

    def update_service(self, namespace: str, spec: ServiceSpec) -> None:
        # micro's UpdateOptions has only namespace, entrypoint and instances: command, env and secrets
        # are set at Create.
        body = {"resource": {"service": _service(spec)}, "options": {"namespace": namespace}}
        self._call(
            "Update", namespace, body, subject=_service_subject(namespace, spec.name, spec.version), retry="unsent"
        )

    def delete_service(self, namespace: str, name: str, version: str) -> None:
        body = {"resource": {"service": {"name": name, "version": version}}, "options": {"namespace": namespace}}
        self._call("Delete", namespace, body, subject=_service_subject(namespace, name, version), done_if=NotFoundError)

    def read_services(self, namespace: str, name: str | None = None) -> list[RuntimeService]:
        body = {"options": {"service": name or "", "version": "", "type": "", "namespace": namespace}}
        answer = self._json(self._call("Read", namespace, body, subject=f"runtime namespace {namespace!r}"), "Read")
        items = answer.get("services") if isinstance(answer, dict) else None
        services: list[RuntimeService] = []
        for item in items or []:
            if not isinstance(item, dict) or not item.get("name"):
                continue
            if name is not None and item["name"] != name:
                continue
            raw_metadata = item.get("metadata") or {}
            metadata = {str(k): str(v) for k, v in raw_metadata.items()} if isinstance(raw_metadata, dict) else {}
            services.append(
                RuntimeService(
                    name=str(item["name"]),
                    version=str(item.get("version") or ""),
                    source=str(item.get("source") or ""),
                    status=platform_status(item.get("status"), metadata),
                    metadata=metadata,
                )
            )
        return sorted(services, key=lambda s: (s.name, s.version))

    def logs(self, namespace: str, name: str, *, since: datetime | None = None, tail: int = 100) -> Iterator[LogRecord]:
        body = {"service": name, "version": "", "count": tail, "stream": False, "options": {"namespace": namespace}}
        text = self._call("Logs", namespace, body, subject=_service_subject(namespace, name, "")).decode(
            "utf-8", errors="replace"
        )
        try:
            records = parse_log_records(text)
        except ValueError as error:
            raise self._unreadable("Logs", str(error)) from None
        if since is not None:
            threshold = since if since.tzinfo else since.replace(tzinfo=UTC)
            records = [r for r in records if r.timestamp >= threshold]
        records.sort(key=lambda r: r.timestamp)
        return iter(records[-tail:] if tail > 0 else [])

    # ------------------------------------------------------------------ the wire

    def _headers(self, namespace: str) -> dict[str, str]:
        return {
            "Micro-Namespace": namespace,
            "Authorization": f"Bearer {self._token}",
            "Content-Type": "application/json",
            "Accept": "application/json",
        }

    def _call(
        self,
        endpoint: Endpoint,
        namespace: str,
        body: dict[str, Any],
        *,
        subject: str,
        retry: RetryPolicy = "safe",
        done_if: type[PlatformError] | None = None,
    ) -> bytes:
        """POST ``body`` to ``Runtime.<endpoint>``; answer the body of a 2xx, raise a domain error else.

        ``retry="safe"`` retries 5xx, 429, timeouts and connection errors; ``"unsent"`` only what never
        reached the runtime. ``done_if``: after an attempt whose outcome is unknown, this error means
        that attempt did the work."""
        url = f"{self.proxy}/runtime/Runtime/{endpoint}"
        payload = json.dumps(body, separators=(",", ":"), sort_keys=True).encode()
        attempts = 0
        outcome_unknown = False
        while True:
            attempts += 1
            problem: str
            status: int | None = None
            try:
                response = self._session.post(
                    url,
                    data=payload,
                    headers=self._headers(namespace),
                    timeout=self._timeout,
                    allow_redirects=False,
                )
            except requests.RequestException as error:
                unsent = _never_sent(error)
                problem = type(error).__name__
                retryable = retry == "safe" or unsent
                if not retryable or attempts > self._retries:
                    raise self._unavailable(endpoint, attempts, problem, None) from None
                outcome_unknown = outcome_unknown or not unsent
            else:
                status = response.status_code
                if 200 <= status < 300:
                    return response.content
                error_body = self._error_body(response)
                mapped = self._map_error(endpoint, status, error_body, subject, namespace)
                if mapped is not None:
                    if done_if is not None and outcome_unknown and isinstance(mapped, done_if):
                        return b""
                    raise mapped
                problem = f"HTTP {status}"
                retryable = retry == "safe" or status in _RETRYABLE_FOR_UNSENT
                if not retryable or attempts > self._retries:
                    raise self._unavailable(endpoint, attempts, problem, status, error_body.get("detail"))
                outcome_unknown = outcome_unknown or status not in _RETRYABLE_FOR_UNSENT
            delay = min(_MAX_BACKOFF, self._backoff * (2 ** (attempts - 1)))
            log.warning(
                "micro runtime call failed, retrying",
                extra={
                    "proxy": self.proxy,
                    "endpoint": f"Runtime.{endpoint}",
                    "attempt": attempts,
                    "problem": problem,
                    "retry_in": delay,
                },
            )
            if delay > 0:
                self._sleep(delay)

    def _error_body(self, response: requests.Response) -> dict[str, Any]:
        """micro's ``{"id", "code", "detail", "status"}``, or what could be read of another body."""
        try:
            parsed = response.json()
        except ValueError:
            parsed = None
        if isinstance(parsed, dict):
            return {
                "id": str(parsed.get("id") or ""),
                "code": parsed.get("code"),
                "detail": self._scrub(str(parsed.get("detail") or "")),
                "status": str(parsed.get("status") or ""),
            }
        return {"id": "", "code": None, "detail": self._scrub(response.text[:200].strip()), "status": ""}

    def _scrub(self, text: str) -> str:
        return text.replace(self._token, "***") if self._token else text

    def _map_error(
        self, endpoint: Endpoint, status: int, error: dict[str, Any], subject: str, namespace: str
    ) -> PlatformError | None:
        """The domain error for a non-2xx answer; ``None`` when it is one to retry (5xx, 429)."""
        detail = str(error.get("detail") or "")
        lowered = detail.lower()
        details: dict[str, Any] = {"namespace": namespace, "runtime_status": status, "runtime_detail": detail}
        if status == 409 or "already exists" in lowered:
            return ConflictError(f"{subject} already exists on the runtime", details)
        if status == 404 or (
            status >= 500 and str(error.get("id", "")).startswith("runtime.") and "not found" in lowered
        ):
            return NotFoundError(f"{subject} does not exist on the runtime", details)
        if status in (400, 422):
            return ValidationError(f"the runtime refused the request for {subject}: {detail or 'bad request'}", details)
        if status in (401, 403):
            return DependencyUnavailableError(
                f"the runtime at {self.proxy} refused the platform's runtime credential",
                {"proxy": self.proxy, "endpoint": f"Runtime.{endpoint}", "status": status, "runtime_detail": detail},
                code="runtime_credential_refused",
            )
        if status >= 500 or status == 429:
            return None
        return DependencyUnavailableError(
            f"the runtime at {self.proxy} answered {status} {_phrase(status)}",
            {"proxy": self.proxy, "endpoint": f"Runtime.{endpoint}", "status": status, "runtime_detail": detail},
        )

    def _unavailable(
        self, endpoint: Endpoint, attempts: int, problem: str, status: int | None, detail: Any = None
    ) -> DependencyUnavailableError:
        details: dict[str, Any] = {
            "proxy": self.proxy,
            "endpoint": f"Runtime.{endpoint}",
            "attempts": attempts,
            "last_error": problem,
        }
        if status is not None:
            details["status"] = status
        if detail:
            details["runtime_detail"] = str(detail)
        return DependencyUnavailableError(f"the runtime at {self.proxy} did not answer", details)

    def _unreadable(self, endpoint: Endpoint, problem: str) -> DependencyUnavailableError:
        return DependencyUnavailableError(
            f"the runtime at {self.proxy} gave an answer that cannot be read",
            {"proxy": self.proxy, "endpoint": f"Runtime.{endpoint}", "problem": problem},
        )

    def _json(self, content: bytes, endpoint: Endpoint) -> Any:
        if not content.strip():
            return {}
        try:
            return json.loads(content)
        except ValueError:
            raise self._unreadable(endpoint, "not JSON") from None


def _resources(quota: ResourceQuota) -> dict[str, int]:
    """micro's ``Resources`` (proto field names, capitalised as declared)."""
    return {"Memory": quota.memory_mib, "CPU": quota.cpu_millicores, "EphemeralStorage": quota.ephemeral_storage_mib}


def _service(spec: ServiceSpec) -> dict[str, Any]:
    return {"name": spec.name, "version": spec.version, "source": spec.source, "metadata": dict(spec.metadata)}


def _service_subject(namespace: str, name: str, version: str) -> str:
    label = f"{name}:{version}" if version else name
    return f"service {label!r} in runtime namespace {namespace!r}"


def _phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return ""
