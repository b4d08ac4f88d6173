"""micro's HTTP API gateway (``micro api``, :8080), as v3.19.0 serves the core services.

A request ``POST /<service>/<Service>/<Method>`` (``service/api/server/resolver.go`` ``apiRoute``) goes
through:

1. The auth wrapper (``service/api/auth/wrapper.go``): the bearer token (or the ``micro-token`` cookie) is
   inspected. The namespace is the ``Micro-Namespace`` header; without one, the token's issuer (the
   header is set to it), else the resolved domain (``micro``). With the blocklist enabled
   (``micro.api.blocklist_enabled``; ``blocklist.go``), an account on it is refused: 401 ``unauthorized
   request`` (plain text). Then "accounts only issued by the namespace are valid": an account whose
   issuer is not that namespace is dropped *for the gateway's own rule check*; with micro's default rule
   (public access, ``service/auth/handler/rules.go`` ``defaultRule``, the only rule the platform's
   clusters have) that check lets the request on either way.
2. Routing (``service/api/router/registry/registry.go`` ``Route``): the service is looked up in the
   registry *in the domain of the ``Micro-Namespace`` header* (resolver.go). The core services
   (``runtime``, ``auth``, ``api``) are registered in ``micro``: named in any other namespace they are
   not found, and the meta handler (``service/api/server/handler.go``) answers 500 ``{"id": "",
   "detail": "service not found"}``.
3. The service: its auth wrapper (``util/wrapper/wrapper.go`` ``AuthHandler``) inspects the same bearer
   token again and puts *that* account in the context: the handlers authorise it on the namespace in the
   request's options (``util/auth/namespace``), not on the header.

The ``api`` service's own handler (``service/api/handler/handler.go``): ``Api.AddToBlockList``,
``RemoveFromBlockList`` and ``ReadBlockList``, for admins of the ``micro`` issuer.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from localcloud.standins import RawRequest, RawResponse
from localcloud.standins.micro.auth import DEFAULT_NAMESPACE, Account, AuthService, authorize_admin
from localcloud.standins.micro.wire import MicroError, ok, read, text

BEARER = "Bearer "  # util/auth/auth.go BearerScheme
CORE_SERVICES = ("runtime", "auth", "api")  # registered in the micro domain


@dataclass
class Call:
    """One routed request: the endpoint, the namespace the gateway settled on, the service's account."""

    service: str
    endpoint: str  # "Runtime.Create"
    namespace: str
    account: Account | None  # as the service's auth wrapper inspected the token (never dropped)
    gateway_account: Account | None  # as the gateway kept it (dropped when its issuer is not the namespace)
    token: str


def route(path: str) -> tuple[str, str] | None:
    """resolver.go ``apiRoute`` for ``/<service>/<Service>/<Method>``."""
    parts = [p for p in path.split("/") if p]
    if len(parts) < 3:
        return None
    return parts[0], f"{parts[1]}.{parts[2]}"


class BlockList:
    """``InMemoryBlockList`` (blocklist.go): ``namespace:id`` entries."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._blocked: set[str] = set()

    def is_blocked(self, account_id: str, namespace: str) -> bool:
        with self._lock:
            return f"{namespace}:{account_id}" in self._blocked

    def add(self, account_id: str, namespace: str) -> None:
        with self._lock:
            self._blocked.add(f"{namespace}:{account_id}")

    def remove(self, account_id: str, namespace: str) -> None:
        with self._lock:
            self._blocked.discard(f"{namespace}:{account_id}")

    def list(self) -> list[str]:
        with self._lock:
            return sorted(self._blocked)


class Gateway:
    def __init__(self, auth: AuthService, *, blocklist_enabled: bool = True) -> None:
        self.auth = auth
        self.blocklist = BlockList()
        self.blocklist_enabled = blocklist_enabled

    def admit(self, request: RawRequest, path: str) -> Call | RawResponse:
        """The auth wrapper and the router: a :class:`Call` to hand to the service, or the answer."""
        routed = route(path)
        header = request.headers.get("authorization", "")
        token = ""
        if header:
            if header.startswith(BEARER):
                token = header[len(BEARER) :]
        else:
            cookie = request.headers.get("cookie", "")
            for part in cookie.split(";"):
                name, _, value = part.strip().partition("=")
                if name == "micro-token":
                    token = value.removeprefix("micro-token=")
        account = self.auth.inspect(token)
        namespace = request.headers.get("micro-namespace", "")
        if not namespace:
            namespace = account.issuer if account is not None else DEFAULT_NAMESPACE
        if account is not None and self.blocklist_enabled and self.blocklist.is_blocked(account.id, account.issuer):
            return text(401, "unauthorized request")
        gateway_account = account if account is not None and account.issuer == namespace else None
        # default rule: public access to every resource, so the gateway's check lets everyone on
        if routed is None or routed[0] not in CORE_SERVICES or namespace != DEFAULT_NAMESPACE:
            return MicroError(500, "service not found", "").response()
        return Call(routed[0], routed[1], namespace, account, gateway_account, token)

    # ------------------------------------------------------------------ the api service's handler

    def api(self, call: Call, body: dict[str, Any]) -> RawResponse:
        handlers: dict[str, Callable[[], RawResponse]] = {
            "Api.AddToBlockList": lambda: self._block(call, body, add=True),
            "Api.RemoveFromBlockList": lambda: self._block(call, body, add=False),
            "Api.ReadBlockList": lambda: self._read_blocklist(call),
        }
        handler = handlers.get(call.endpoint)
        if handler is None:
            raise MicroError(500, f"unknown service api.{call.endpoint}", "go.micro.client")
        return handler()

    def _block(self, call: Call, body: dict[str, Any], *, add: bool) -> RawResponse:
        message = "api.AddToBlockList" if add else "api.RemoveFromBlockList"
        request = read(f"api.{'AddToBlockList' if add else 'RemoveFromBlockList'}Request", body)
        authorize_admin(call.account, DEFAULT_NAMESPACE, "api.API.AddToBlockList")
        if not request.get("id"):
            raise MicroError(400, "Missing ID field", message)
        if not request.get("namespace"):
            raise MicroError(400, "Missing Namespace field", message)
        (self.blocklist.add if add else self.blocklist.remove)(request["id"], request["namespace"])
        return ok({})

    def _read_blocklist(self, call: Call) -> RawResponse:
        authorize_admin(call.account, DEFAULT_NAMESPACE, "api.API.AddToBlockList")
        return ok({"ids": self.blocklist.list()})
