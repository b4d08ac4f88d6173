"""The ``RuntimePort`` and ``RuntimeAuthPort`` over a micro v3 cluster, through its HTTP API gateway.

The contract, read in github.com/micro/micro at tag v3.19.0 (where this docstring and the source
disagree, the source is right and this is the bug):

Calls. ``POST {api}/<service>/<Service>/<Method>`` with a JSON body (``runtime/Runtime/{Create,Read,
Update,Delete,Logs}``, ``auth/Auth/{Generate,Token}``, ``auth/Accounts/{List,Delete}``,
``api/Api/AddToBlockList``) and the headers ``Authorization: Bearer <token>``, ``Micro-Namespace: micro``
and ``Content-Type: application/json``. The token is the platform's, of an admin account of the
``micro`` issuer. The header names *micro*, not the tenant: the gateway looks the service up in the
registry domain the header names (``service/api/server/resolver.go``, ``router/registry``), and the core
services are registered in ``micro`` (a tenant's name answers 500 ``service not found``); and the
gateway keeps an account only when its issuer is the header's namespace (``service/api/auth/
wrapper.go``). The tenant is named in every request's ``options.namespace``, which is what the
handlers authorise (``util/auth/namespace`` ``AuthorizeAdmin``: the micro issuer's admins may act in
any namespace).

Wire shapes (``proto/runtime/runtime.proto``, ``proto/auth/auth.proto``, read with jsonpb, which refuses
unknown fields): proto field names, so ``allowedlabels`` and ``Resources {Memory, CPU,
EphemeralStorage}``. Answers are jsonpb with defaults emitted (``int64`` as strings).

Services (``service/runtime/manager/manager.go``, ``service/runtime/source/git/git.go``):

- ``Service.version`` is the git ref micro checks out: the platform sends the *commit*. The deployment
  id travels in ``metadata.deployment_id`` and is what ``read_services`` answers as the version.
- ``Service.source`` is the repository as micro's ``ParseSource`` reads it: ``host/owner/name`` without
  a scheme (``https://`` is prepended at checkout; an https URL would parse as the repository
  ``https://github.com`` and the folder ``owner/name``), without ``.git`` (GitHub sources are fetched
  as ``{repo}/archive/{ref}.zip``). Only https remotes can be fetched by a cluster. The service's
  directory goes in ``options.entrypoint``. A private repository's credential goes in
  ``options.secrets.GIT_CREDENTIALS`` (git.go ``credentialsKey``): a short-lived token asked for right
  before the call, never stored by the platform, registered with the log redaction. (micro keeps it
  in its store and the service's Kubernetes Secret, so the process sees it: it expires within the hour.)
- Environment: ``kubernetes/client/client.go`` ``NewDeployment`` keeps an ``env`` entry only when
  ``strings.Split(e, "=")`` has exactly two parts. Every config value holding an ``=`` is therefore sent
  in ``options.secrets``, which micro stores in a Kubernetes Secret and maps into the environment with
  ``secretKeyRef``, value intact (``kubernetes/util.go`` ``createCredentials``). ``PORT`` is 8080 (the
  Kubernetes runtime's ``DefaultPort``, its readiness probe's); ``MICRO_SERVICE`` and ``MICRO_VERSION``
  are set as the local runtime sets them.
- A Create of a name and version that exists rewrites micro's record but leaves the running deployment
  and its environment as they were (``ErrAlreadyExists``): before creating a commit that is running for
  an *older* deployment (a config change redeploys the current commit), that one is deleted first. Its
  replacement then starts from nothing (no overlap for the same commit on micro).
- Statuses (``runtime.ServiceStatus``: UNKNOWN=0, PENDING=1, BUILDING=2, STARTING=3, RUNNING=4,
  STOPPING=5, STOPPED=6, ERROR=7; a number, a numeric string or a name) map to the platform's:
  UNKNOWN, PENDING, BUILDING, STARTING -> ``starting``; RUNNING -> ``running``; STOPPING, STOPPED ->
  ``stopped``; ERROR -> ``error`` (a build or fetch failure is in ``metadata.error``).

Logs (``service/runtime/handler/handler.go``): records carry no time (``Timestamp`` is never set: every
record says ``"0"``), come as jsonpb objects one after the other (``rpc/stream.go``), and the handler
ignores ``since``. So ``since`` is applied only to records that carry a time; when none does, the last
``tail`` records are answered as they are (the caller says so). A service without pods answers 404
``runtime.logs``: no records.

Errors (micro's body ``{"id", "code", "detail", "status"}``; the gateway's own refusals are plain text):
409 (Kubernetes ``AlreadyExists``) and 400 ``... already exists`` -> ``ConflictError``; 404, 500
``go.micro.client`` ``kubernetes: resource not found``, 500 ``runtime.Runtime.{Update,Delete}`` ``not
found`` and 400 ``Account not found ...`` -> ``NotFoundError``; another 400 -> ``ValidationError``;
401/403 -> ``DependencyUnavailableError`` (code ``runtime_credential_refused``: the platform's credential
was refused, not the user's); 5xx, 429, timeouts and connection errors -> retried, then
``DependencyUnavailableError``. Deleting what is gone already (a namespace, quota, policy, service or
account) succeeds.

Retries (exponential backoff ``backoff * 2**k``, at most ``retries`` retries after the first attempt):
calls that are safe to repeat (Read, Logs, every Delete, Create/Update of a namespace, a quota or a
network policy, every auth call) are retried on 5xx, 429, timeouts and connection errors; a service
Create or Update (which starts a build and a rollout) only when the request was never sent (connection
refused, connect timeout) or answered 429. After an attempt whose outcome is unknown (a 5xx or a lost
answer), a Delete answered "not found" or a Create answered "already exists" is taken as done.

The token goes only into the ``Authorization`` header: no error message, detail or log line holds it
(it is registered with the log redaction, as are the secrets and credentials passed through; micro's
tokens are JWTs, a shape the redaction masks).
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import UTC, datetime
from http import HTTPStatus
from typing import Any, Literal
from urllib.parse import urlsplit

import requests
from urllib3.exceptions import ConnectTimeoutError, NewConnectionError

from chalicelib.domain.errors import (
    ConflictError,
    DependencyUnavailableError,
    NotFoundError,
    PlatformError,
    ValidationError,
)
from chalicelib.domain.ports import (
    LogRecord,
    ResourceQuota,
    RuntimeAccount,
    RuntimeService,
    RuntimeToken,
    ServiceSpec,
)
from chalicelib.domain.redaction import register_secret

__all__ = [
    "ADMIN_ISSUER",
    "PLATFORM_STATUS",
    "SERVICE_STATUS_NAMES",
    "MicroRuntime",
    "micro_source",
    "parse_log_records",
    "platform_status",
]

log = logging.getLogger("platform.runtime.micro")

RetryPolicy = Literal["safe", "unsent"]

#: The issuer of the platform's admin account, and the registry domain of micro's core services
#: (util/auth/namespace/namespace.go ``DefaultNamespace``).
ADMIN_ISSUER = "micro"
#: The Kubernetes runtime's container port and readiness probe (kubernetes/client/client.go DefaultPort).
SERVICE_PORT = 8080
#: micro's git source secret (service/runtime/source/git/git.go ``credentialsKey``).
GIT_CREDENTIALS = "GIT_CREDENTIALS"

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
_EPOCH = datetime.fromtimestamp(0, UTC)


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


def micro_source(source: str, aliases: Sequence[tuple[str, str]] = ()) -> str:
    """The deployment's git remote as micro's ``ParseSource`` takes it: ``host/owner/name``.

    ``aliases`` rewrite a prefix first (the local stage's GitHub stand-in clones from ``file://`` URLs
    that stand for ``https://github.com/``). Anything but an https URL without credentials is refused:
    a cluster fetches the source itself, over https."""
    for prefix, replacement in aliases:
        if prefix and source.startswith(prefix):
            source = replacement + source[len(prefix) :]
            break
    parts = urlsplit(source.strip())
    if parts.scheme != "https" or not parts.hostname:
        raise ValidationError(
            "a micro cluster fetches the source itself, from an https git URL: this source is not one "
            "(deploy from the repository's https clone URL, or link the repository and push)",
            {"fields": [{"field": "source", "message": "an https git URL"}]},
        )
    if parts.username or parts.password:
        raise ValidationError(
            "the source carries credentials", {"fields": [{"field": "source", "message": "no credentials"}]}
        )
    path = parts.path.strip("/").removesuffix(".git").strip("/")
    host = parts.hostname + (f":{parts.port}" if parts.port else "")
    return f"{host}/{path}" if path else host


def _timestamp(value: Any) -> datetime:
    """A ``LogRecord.timestamp``: int64 unix seconds (a number, or a string as jsonpb writes int64)."""
    if isinstance(value, str):
        text = value.strip()
        if not text.lstrip("-").isdigit():
            try:
                parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
            except ValueError:
                return _EPOCH
            return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
        value = int(text)
    if not isinstance(value, int | float) or isinstance(value, bool):
        return _EPOCH
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
    """``LogRecord``s from a Logs answer: jsonpb objects one after the other with nothing between (the
    gateway's stream, rpc/stream.go), newline-delimited, a JSON array, or one object."""
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


def _same_ref(a: str, b: str) -> bool:
    """Two versions name one Kubernetes deployment when ``client.Format`` makes them equal."""

    def fmt(v: str) -> str:
        return v.lower().replace("/", "-").replace(".", "-").replace("_", "-")

    return fmt(a) == fmt(b)


class MicroRuntime:
    """One cluster's micro runtime and auth, through its API gateway (``api_address``), with the
    platform's admin token."""

    def __init__(
        self,
        api_address: str,
        token: str,
        *,
        timeout: float = 10,
        retries: int = 3,
        backoff: float = 0.5,
        session: requests.Session | None = None,
        sleep: Callable[[float], None] = time.sleep,
        remote_aliases: Sequence[tuple[str, str]] = (),
    ) -> None:
        address = api_address.strip().rstrip("/")
        if not address:
            raise ValueError("a micro API address is required")
        self.api = address if "://" in address else f"https://{address}"
        self._token = token
        self._timeout = timeout
        self._retries = max(0, retries)
        self._backoff = max(0.0, backoff)
        self._session = session or requests.Session()
        self._sleep = sleep
        self._aliases = tuple(remote_aliases)
        register_secret(token)

    def __repr__(self) -> str:
        return f"MicroRuntime({self.api!r})"

    # ------------------------------------------------------------------ namespaces

    def create_namespace(self, namespace: str) -> None:
        self._call(
            "runtime/Runtime/Create",
            namespace,
            {"resource": {"namespace": {"name": namespace}}, "options": {"namespace": namespace}},
            subject=f"runtime namespace {namespace!r}",
            done_if=ConflictError,
        )

    def delete_namespace(self, namespace: str) -> None:
        self._delete_absent_ok(namespace, {"namespace": {"name": namespace}}, f"runtime namespace {namespace!r}")

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
        """Create; when it exists already (Kubernetes' 409), Update (the wanted state either way)."""
        body = {"resource": resource, "options": {"namespace": namespace}}
        try:
            self._call("runtime/Runtime/Create", namespace, body, subject=subject)
        except ConflictError:
            self._call("runtime/Runtime/Update", namespace, body, subject=subject)

    def _delete_absent_ok(self, namespace: str, resource: dict[str, Any], subject: str) -> None:
        """Delete; one that is not there (``kubernetes: resource not found``) is deleted already."""
        try:
            self._call(
                "runtime/Runtime/Delete",
                namespace,
                {"resource": resource, "options": {"namespace": namespace}},
                subject=subject,
            )
        except NotFoundError:
            return

    # ------------------------------------------------------------------ services

    def create_service(self, namespace: str, spec: ServiceSpec) -> None:
        commit = spec.metadata.get("commit") or spec.version
        source = micro_source(spec.remote or spec.source, self._aliases)
        for running in self._micro_services(namespace, spec.name):
            if not _same_ref(running["version"], commit):
                continue
            if running["deployment_id"] == spec.version:
                return  # created by an earlier try of this call
            # a Create of this name and version would keep the running deployment as it is
            self._delete_micro(namespace, spec.name, running["version"])
        env: list[str] = []
        secrets: dict[str, str] = {}
        plain = {
            **spec.env,
            "PORT": str(SERVICE_PORT),
            "MICRO_SERVICE": spec.name,
            "MICRO_VERSION": spec.version,
        }
        for key, value in sorted(plain.items()):
            if "=" in value:  # NewDeployment would drop it: the Secret carries it whole
                secrets[key] = value
            else:
                env.append(f"{key}={value}")
        secrets.update(spec.secrets)
        for value in spec.secrets.values():
            register_secret(value)
        credential = spec.fetch_credential() if spec.fetch_credential is not None else None
        if credential:
            register_secret(credential)
            secrets[GIT_CREDENTIALS] = credential
        metadata = {**spec.metadata, "deployment_id": spec.version}
        options: dict[str, Any] = {
            "command": [str(part) for part in spec.command],
            "env": env,
            "secrets": secrets,
            "namespace": namespace,
        }
        path = spec.metadata.get("path", "").strip().strip("/")
        if path and path != ".":
            options["entrypoint"] = path
        instances = spec.metadata.get("instances", "")
        if instances.isdigit() and int(instances) > 1:
            options["instances"] = int(instances)
        body = {
            "resource": {"service": {"name": spec.name, "version": commit, "source": source, "metadata": metadata}},
            "options": options,
        }
        self._call(
            "runtime/Runtime/Create",
            namespace,
            body,
            subject=_service_subject(namespace, spec.name, spec.version),
            retry="unsent",
        )

    def update_service(self, namespace: str, spec: ServiceSpec) -> None:
        # micro's UpdateOptions has only namespace, entrypoint and instances: command, env and secrets
        # are set at Create (and the Kubernetes runtime's Update changes annotations and replicas only).
        commit = spec.metadata.get("commit") or spec.version
        service = {
            "name": spec.name,
            "version": commit,
            "source": micro_source(spec.remote or spec.source, self._aliases),
            "metadata": {**spec.metadata, "deployment_id": spec.version},
        }
        self._call(
            "runtime/Runtime/Update",
            namespace,
            {"resource": {"service": service}, "options": {"namespace": namespace}},
            subject=_service_subject(namespace, spec.name, spec.version),
            retry="unsent",
        )

    def delete_service(self, namespace: str, name: str, version: str) -> None:
        """``version`` is the deployment's id (or micro's version): every micro version running it goes."""
        for running in self._micro_services(namespace, name):
            if version in (running["deployment_id"], running["version"]):
                self._delete_micro(namespace, name, running["version"])

    def _delete_micro(self, namespace: str, name: str, micro_version: str) -> None:
        body = {
            "resource": {"service": {"name": name, "version": micro_version}},
            "options": {"namespace": namespace},
        }
        try:
            self._call(
                "runtime/Runtime/Delete",
                namespace,
                body,
                subject=_service_subject(namespace, name, micro_version),
                done_if=NotFoundError,
            )
        except NotFoundError:
            return

    def _micro_services(self, namespace: str, name: str | None) -> list[dict[str, Any]]:
        body = {"options": {"service": name or "", "namespace": namespace}}
        answer = self._json(
            self._call("runtime/Runtime/Read", namespace, body, subject=f"runtime namespace {namespace!r}"),
            "Runtime.Read",
        )
        items = answer.get("services") if isinstance(answer, dict) else None
        found: list[dict[str, Any]] = []
        for item in items or []:
            if not isinstance(item, dict) or not item.get("name"):
                continue
            if name is not None and item["name"] != name:
                continue
            raw_metadata = item.get("metadata") or {}
            metadata = {str(k): str(v) for k, v in raw_metadata.items()} if isinstance(raw_metadata, dict) else {}
            version = str(item.get("version") or "")
            found.append(
                {
                    "name": str(item["name"]),
                    "version": version,
                    "deployment_id": metadata.get("deployment_id") or version,
                    "source": str(item.get("source") or ""),
                    "status": item.get("status"),
                    "metadata": metadata,
                }
            )
        return found

    def read_services(self, namespace: str, name: str | None = None) -> list[RuntimeService]:
        services = [
            RuntimeService(
                name=item["name"],
                version=item["deployment_id"],
                source=item["source"],
                status=platform_status(item["status"], item["metadata"]),
                metadata={**item["metadata"], "micro_version": item["version"]},
            )
            for item in self._micro_services(namespace, name)
        ]
        return sorted(services, key=lambda s: (s.name, s.version))

    def logs(self, namespace: str, name: str, *, since: datetime | None = None, tail: int = 100) -> Iterator[LogRecord]:
        if tail <= 0:
            return iter([])
        body = {"service": name, "count": tail, "stream": False, "options": {"namespace": namespace}}
        try:
            content = self._call("runtime/Runtime/Logs", namespace, body, subject=_service_subject(namespace, name, ""))
        except NotFoundError:  # runtime.logs "no such service": no pods, so no output
            return iter([])
        try:
            records = parse_log_records(content.decode("utf-8", errors="replace"))
        except ValueError as error:
            raise self._unreadable("Runtime.Logs", str(error)) from None
        if since is not None and any(r.timestamp != _EPOCH for r in records):
            threshold = since if since.tzinfo else since.replace(tzinfo=UTC)
            records = [r for r in records if r.timestamp >= threshold]
            records.sort(key=lambda r: r.timestamp)
        # records without a time (micro v3 never sets one) stay in the order micro answered them
        return iter(records[-tail:])

    # ------------------------------------------------------------------ accounts (RuntimeAuthPort)

    def create_account(
        self, namespace: str, account_id: str, secret: str, scopes: Sequence[str], metadata: dict[str, str]
    ) -> None:
        register_secret(secret)
        body = {
            "id": account_id,
            "name": account_id,
            "type": "user",
            "secret": secret,
            "scopes": list(scopes),
            "metadata": dict(metadata),
            "options": {"namespace": namespace},
        }
        self._call(
            "auth/Auth/Generate",
            namespace,
            body,
            subject=_account_subject(namespace, account_id),
            done_if=ConflictError,
        )

    def delete_account(self, namespace: str, account_id: str) -> None:
        """Delete the account (its refresh token goes with it), then put it on the gateway's blocklist:
        micro's access tokens are JWTs that stay valid until they expire whatever happens to the account
        (service/auth/client ``Inspect`` decodes them locally); a blocked account is refused
        (service/api/auth/wrapper.go, with ``micro.api.blocklist_enabled``)."""
        try:
            self._call(
                "auth/Accounts/Delete",
                namespace,
                {"id": account_id, "options": {"namespace": namespace}},
                subject=_account_subject(namespace, account_id),
                done_if=NotFoundError,
            )
        except NotFoundError:
            pass
        self._call(
            "api/Api/AddToBlockList",
            namespace,
            {"id": account_id, "namespace": namespace},
            subject=_account_subject(namespace, account_id),
        )

    def list_accounts(self, namespace: str) -> list[RuntimeAccount]:
        answer = self._json(
            self._call(
                "auth/Accounts/List",
                namespace,
                {"options": {"namespace": namespace}},
                subject=f"the accounts of runtime namespace {namespace!r}",
            ),
            "Accounts.List",
        )
        accounts = answer.get("accounts") if isinstance(answer, dict) else None
        found: list[RuntimeAccount] = []
        for item in accounts or []:
            if isinstance(item, dict) and item.get("id"):
                raw = item.get("metadata") or {}
                metadata = {str(k): str(v) for k, v in raw.items()} if isinstance(raw, dict) else {}
                found.append(RuntimeAccount(str(item["id"]), metadata, str(item.get("type") or "user")))
        return found

    def token(self, namespace: str, account_id: str, secret: str, ttl_seconds: int) -> RuntimeToken:
        register_secret(secret)
        body = {
            "id": account_id,
            "secret": secret,
            "token_expiry": int(ttl_seconds),
            "options": {"namespace": namespace},
        }
        answer = self._json(
            self._call("auth/Auth/Token", namespace, body, subject=_account_subject(namespace, account_id)),
            "Auth.Token",
        )
        token = answer.get("token") if isinstance(answer, dict) else None
        if not isinstance(token, dict) or not token.get("access_token"):
            raise self._unreadable("Auth.Token", "no token in the answer")
        # (micro's access tokens are JWTs, a shape the log redaction masks; neither token is logged)
        access, refresh = str(token["access_token"]), str(token.get("refresh_token") or "")
        expiry = token.get("expiry")
        expires_at = (
            _timestamp(expiry)
            if expiry not in (None, "", "0", 0)
            else datetime.fromtimestamp(time.time() + ttl_seconds, UTC)
        )
        return RuntimeToken(access, refresh, expires_at)

    # ------------------------------------------------------------------ the wire

    def _headers(self) -> dict[str, str]:
        return {
            "Micro-Namespace": ADMIN_ISSUER,
            "Authorization": f"Bearer {self._token}",
            "Content-Type": "application/json",
            "Accept": "application/json",
        }

    def _call(
        self,
        path: str,
        namespace: str,
        body: dict[str, Any],
        *,
        subject: str,
        retry: RetryPolicy = "safe",
        done_if: type[PlatformError] | None = None,
    ) -> bytes:
        """POST ``body`` to ``{api}/{path}``; answer the body of a 2xx, raise a domain error else.

        ``retry="safe"`` retries 5xx, 429, timeouts and connection errors; ``"unsent"`` only what never
        reached the runtime. ``done_if``: after an attempt whose outcome is unknown, this error means
        that attempt did the work."""
        url = f"{self.api}/{path}"
        endpoint = ".".join(path.split("/")[-2:])
        payload = json.dumps(body, separators=(",", ":"), sort_keys=True).encode()
        attempts = 0
        outcome_unknown = False
        while True:
            attempts += 1
            problem: str
            status: int | None = None
            try:
                response = self._session.post(
                    url, data=payload, headers=self._headers(), timeout=self._timeout, allow_redirects=False
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
                    "api": self.api,
                    "endpoint": endpoint,
                    "attempt": attempts,
                    "problem": problem,
                    "retry_in": delay,
                },
            )
            if delay > 0:
                self._sleep(delay)

    def _error_body(self, response: requests.Response) -> dict[str, Any]:
        """micro's ``{"id", "code", "detail", "status"}``, or what could be read of another body (the
        gateway's own refusals are plain text)."""
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
        self, endpoint: str, status: int, error: dict[str, Any], subject: str, namespace: str
    ) -> PlatformError | None:
        """The domain error for a non-2xx answer; ``None`` when it is one to retry (5xx, 429)."""
        detail = str(error.get("detail") or "")
        lowered = detail.lower()
        error_id = str(error.get("id") or "")
        details: dict[str, Any] = {"namespace": namespace, "runtime_status": status, "runtime_detail": detail}
        if status == 409 or (status in (400, 500) and "already exists" in lowered):
            return ConflictError(f"{subject} already exists on the runtime", details)
        not_found = (
            status == 404
            or (status == 500 and error_id == "go.micro.client" and detail == "kubernetes: resource not found")
            or (
                status == 500
                and error_id in ("runtime.Runtime.Delete", "runtime.Runtime.Update")
                and detail == "not found"
            )
            or (status == 400 and "not found" in lowered)
        )
        if not_found:
            return NotFoundError(f"{subject} does not exist on the runtime", details)
        if status in (400, 422):
            return ValidationError(f"the runtime refused the request for {subject}: {detail or 'bad request'}", details)
        if status in (401, 403):
            return DependencyUnavailableError(
                f"the runtime at {self.api} refused the platform's runtime credential",
                {"api": self.api, "endpoint": endpoint, "status": status, "runtime_detail": detail},
                code="runtime_credential_refused",
            )
        if status >= 500 or status == 429:
            return None
        return DependencyUnavailableError(
            f"the runtime at {self.api} answered {status} {_phrase(status)}",
            {"api": self.api, "endpoint": endpoint, "status": status, "runtime_detail": detail},
        )

    def _unavailable(
        self, endpoint: str, attempts: int, problem: str, status: int | None, detail: Any = None
    ) -> DependencyUnavailableError:
        details: dict[str, Any] = {"api": self.api, "endpoint": endpoint, "attempts": attempts, "last_error": problem}
        if status is not None:
            details["status"] = status
        if detail:
            details["runtime_detail"] = str(detail)
        return DependencyUnavailableError(f"the runtime at {self.api} did not answer", details)

    def _unreadable(self, endpoint: str, problem: str) -> DependencyUnavailableError:
        return DependencyUnavailableError(
            f"the runtime at {self.api} gave an answer that cannot be read",
            {"api": self.api, "endpoint": endpoint, "problem": problem},
        )

    def _json(self, content: bytes, endpoint: str) -> Any:
        if not content.strip():
            return {}
        try:
            return json.loads(content)
        except ValueError:
            raise self._unreadable(endpoint, "not JSON") from None


def _resources(quota: ResourceQuota) -> dict[str, int]:
    """micro's ``Resources`` (proto field names, capitalised as declared)."""
    return {"Memory": quota.memory_mib, "CPU": quota.cpu_millicores, "EphemeralStorage": quota.ephemeral_storage_mib}


def _service_subject(namespace: str, name: str, version: str) -> str:
    label = f"{name}:{version}" if version else name
    return f"service {label!r} in runtime namespace {namespace!r}"


def _account_subject(namespace: str, account_id: str) -> str:
    return f"runtime account {account_id!r} of namespace {namespace!r}"


def _phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return ""
