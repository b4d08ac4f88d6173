"""micro v3's wire, as its HTTP API gateway speaks it (github.com/micro/micro, tag v3.19.0).

- Errors are ``service/errors/errors.go``'s ``Error {id, code, detail, status}``, written by the gateway
  (``service/api/handler/rpc/rpc.go`` ``writeError``) with the error's code as the HTTP status. An error
  that is not a micro error when a handler returns it (a Kubernetes client error, for one) crosses gRPC
  as a plain status message: the client (``service/client/grpc/error.go`` ``microError``) parses it as
  JSON, and falls back to ``InternalServerError("go.micro.client", message)`` when it is not one. So a
  plain ``kubernetes: resource not found`` reaches the caller as 500 ``go.micro.client``, and the JSON
  body of a Kubernetes ``Status`` (409 ``AlreadyExists``) as ``{"id": "", "code": 409, "detail": "",
  "status": "Failure"}`` (its ``code`` and ``status`` match the error's fields, nothing else does).
- Requests are read with ``jsonpb`` (``service/server/grpc/codec.go``): a field the message does not
  declare, or a value of the wrong type, fails the call before the handler runs; the gRPC status that
  carries it is not a micro error, so the gateway answers 500 ``go.micro.client``
  ``grpc: error unmarshalling request: ...``. Both the proto field name and its lowerCamel JSON name
  are accepted, as jsonpb accepts them.
- Answers are written by ``jsonpb`` with ``EmitDefaults: true, OrigName: true``: proto field names, every
  field present (zero values included), ``int64`` as a JSON string (``"timestamp": "0"``), ``int32`` as a
  number.
"""

from __future__ import annotations

import json
from http import HTTPStatus
from typing import Any

from localcloud.standins import RawResponse

JSON_TYPE = "application/json"
K8S_NOT_FOUND = "kubernetes: resource not found"  # service/runtime/kubernetes/api/response.go ErrNotFound


class MicroError(Exception):
    """``errors.Error`` (service/errors/errors.go): answered with ``code`` as the HTTP status."""

    def __init__(self, code: int, detail: str, error_id: str, status: str | None = None) -> None:
        super().__init__(detail)
        self.code = code
        self.detail = detail
        self.error_id = error_id
        self.status = status if status is not None else _phrase(code)

    def body(self) -> dict[str, Any]:
        return {"id": self.error_id, "code": self.code, "detail": self.detail, "status": self.status}

    def response(self) -> RawResponse:
        return RawResponse(self.code, json.dumps(self.body()).encode(), {"Content-Type": JSON_TYPE})


def plain_error(message: str) -> MicroError:
    """A handler's plain Go error as the gateway relays it: service/client/grpc/error.go ``microError``
    (``errors.Parse`` of the status message, else ``InternalServerError("go.micro.client", message)``)."""
    try:
        parsed = json.loads(message)
    except ValueError:
        parsed = None
    if isinstance(parsed, dict) and isinstance(parsed.get("code"), int) and parsed["code"] > 0:
        return MicroError(
            parsed["code"],
            str(parsed.get("detail") or ""),
            str(parsed.get("id") or ""),
            str(parsed.get("status") or ""),
        )
    return MicroError(500, message, "go.micro.client", "Internal Server Error")


def k8s_not_found() -> MicroError:
    """What a Kubernetes 404 becomes at the caller (kubernetes/api/response.go -> grpc -> gateway)."""
    return plain_error(K8S_NOT_FOUND)


def k8s_already_exists(kind: str, name: str) -> MicroError:
    """A Kubernetes 409: its ``Status`` body is the error's text (api/response.go ``newResponse``)."""
    status = {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": f'{kind} "{name}" already exists',
        "reason": "AlreadyExists",
        "details": {"name": name, "kind": kind},
        "code": 409,
    }
    return plain_error(json.dumps(status))


def ok(body: Any) -> RawResponse:
    """A unary answer: the rpc handler re-encodes the decoded answer (``jsonMarshal``); an empty body is 204."""
    content = json.dumps(body).encode()
    return RawResponse(200, content, {"Content-Type": JSON_TYPE})


def text(status: int, message: str) -> RawResponse:
    """``http.Error``: a plain-text answer (what the gateway's auth wrapper writes)."""
    return RawResponse(status, (message + "\n").encode(), {"Content-Type": "text/plain; charset=utf-8"})


def int64(value: int) -> str:
    """jsonpb writes ``int64`` as a JSON string."""
    return str(int(value))


def _phrase(code: int) -> str:
    try:
        return HTTPStatus(code).phrase
    except ValueError:
        return ""


# --------------------------------------------------------------------------- jsonpb reading

# Message schemas as the protos declare them (proto/runtime/runtime.proto, proto/auth/auth.proto,
# proto/api/api.proto): field -> message name, or a scalar kind. lowerCamel names are added below.
SCHEMAS: dict[str, dict[str, str]] = {
    # runtime.proto
    "runtime.CreateRequest": {"resource": "runtime.Resource", "options": "runtime.CreateOptions"},
    "runtime.UpdateRequest": {"resource": "runtime.Resource", "options": "runtime.UpdateOptions"},
    "runtime.DeleteRequest": {"resource": "runtime.Resource", "options": "runtime.DeleteOptions"},
    "runtime.ReadRequest": {"options": "runtime.ReadOptions"},
    "runtime.LogsRequest": {
        "service": "string",
        "stream": "bool",
        "count": "int",
        "since": "int",
        "options": "runtime.LogsOptions",
        "version": "string",
    },
    "runtime.Resource": {
        "namespace": "runtime.Namespace",
        "networkpolicy": "runtime.NetworkPolicy",
        "service": "runtime.Service",
        "resourcequota": "runtime.ResourceQuota",
    },
    "runtime.Namespace": {"name": "string"},
    "runtime.NetworkPolicy": {"allowedlabels": "map", "name": "string", "namespace": "string"},
    "runtime.ResourceQuota": {
        "name": "string",
        "namespace": "string",
        "requests": "runtime.Resources",
        "limits": "runtime.Resources",
    },
    "runtime.Resources": {"Memory": "int", "CPU": "int", "EphemeralStorage": "int"},
    "runtime.Service": {"name": "string", "version": "string", "source": "string", "metadata": "map", "status": "int"},
    "runtime.CreateOptions": {
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
        "force": "bool",
    },
    "runtime.UpdateOptions": {"namespace": "string", "entrypoint": "string", "instances": "int"},
    "runtime.DeleteOptions": {"namespace": "string"},
    "runtime.ReadOptions": {"service": "string", "version": "string", "type": "string", "namespace": "string"},
    "runtime.LogsOptions": {"namespace": "string"},
    # auth.proto
    "auth.Options": {"namespace": "string"},
    "auth.GenerateRequest": {
        "id": "string",
        "metadata": "map",
        "scopes": "strings",
        "secret": "string",
        "type": "string",
        "provider": "string",
        "options": "auth.Options",
        "name": "string",
    },
    "auth.InspectRequest": {"token": "string", "options": "auth.Options"},
    "auth.TokenRequest": {
        "id": "string",
        "secret": "string",
        "refresh_token": "string",
        "token_expiry": "int",
        "options": "auth.Options",
    },
    "auth.ListAccountsRequest": {"options": "auth.Options"},
    "auth.DeleteAccountRequest": {"id": "string", "options": "auth.Options"},
    "auth.ChangeSecretRequest": {
        "id": "string",
        "old_secret": "string",
        "new_secret": "string",
        "options": "auth.Options",
    },
    # api.proto
    "api.AddToBlockListRequest": {"id": "string", "namespace": "string"},
    "api.RemoveFromBlockListRequest": {"id": "string", "namespace": "string"},
    "api.ReadBlockListRequest": {},
}


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part[:1].upper() + part[1:] for part in rest)


def read(message: str, value: Any) -> dict[str, Any]:
    """The request as jsonpb reads it into ``message`` (field names normalised to the proto's), or the
    error the gateway answers when jsonpb refuses it."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise _unmarshal(f"json: cannot unmarshal {type(value).__name__} into Go value of type {message}")
    return _read(message, value)


def _read(message: str, value: dict[str, Any]) -> dict[str, Any]:
    fields = SCHEMAS[message]
    by_json = {**{_camel(k): k for k in fields}, **{k: k for k in fields}}
    out: dict[str, Any] = {}
    for name, item in value.items():
        field = by_json.get(name)
        if field is None:
            raise _unmarshal(f'unknown field "{name}" in {message}')
        kind = fields[field]
        if item is None:
            continue
        if kind in SCHEMAS:
            if not isinstance(item, dict):
                raise _unmarshal(f"bad value for field {field} of {message}")
            out[field] = _read(kind, item)
        elif kind == "string" and not isinstance(item, str):
            raise _unmarshal(f"bad value in StringValue for field {field}")
        elif kind == "bool" and not isinstance(item, bool):
            raise _unmarshal(f"bad value in BoolValue for field {field}")
        elif kind == "int":
            if isinstance(item, bool) or not (
                isinstance(item, int) or (isinstance(item, str) and item.strip().lstrip("-").isdigit())
            ):
                raise _unmarshal(f"bad value in IntValue for field {field}")
            out[field] = int(item)
            continue
        elif kind == "strings" and not (isinstance(item, list) and all(isinstance(s, str) for s in item)):
            raise _unmarshal(f"bad value for repeated string field {field}")
        elif kind == "map" and not (isinstance(item, dict) and all(isinstance(v, str) for v in item.values())):
            raise _unmarshal(f"bad value for map field {field}")
        out[field] = item
    return out


def _unmarshal(reason: str) -> MicroError:
    return plain_error(f"grpc: error unmarshalling request: {reason}")
