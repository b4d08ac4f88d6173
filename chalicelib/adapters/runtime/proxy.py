"""The local runtime's reverse proxy: one small HTTP server per namespace.

``http://<host>:<port>/<service>/<rest>`` is forwarded to ``/<rest>`` on the port of the instance the
router picks (method, headers, body and query string kept; hop-by-hop headers dropped; the
``X-Forwarded-*`` headers added). Answers, in the platform's error shape:

- 404 ``not_found`` when the namespace has no such service (no version at all);
- 502 ``bad_gateway`` when the service has versions but none is running, or the instance fails.

The proxy does not decide anything itself: ``Router`` (the runtime) picks the target and counts."""

from __future__ import annotations

import http.client
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Protocol
from urllib.parse import unquote

HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "proxy-connection",
        "te",
        "trailer",
        "trailers",
        "transfer-encoding",
        "upgrade",
    }
)
UPSTREAM_TIMEOUT_SECONDS = 30.0
# The tenant services' request body limit (the platform API's own is registry.MAX_BODY_BYTES, 1 MiB).
SERVICE_MAX_BODY_BYTES = 64 * 1024 * 1024


UNKNOWN = "unknown"  # the namespace has no such service
UNAVAILABLE = "unavailable"  # the service has versions, none of them running


class Router(Protocol):
    def route(self, namespace: str, service: str) -> int | str:
        """The port of the instance to forward to, or ``UNKNOWN`` / ``UNAVAILABLE``. Counts the
        request when it answers a port."""
        ...


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], namespace: str, router: Router) -> None:
        self.namespace = namespace
        self.router = router
        super().__init__(address, _Handler)


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.0"
    server_version = "micro-local-proxy"

    def log_message(self, format: str, *args: Any) -> None:
        """Silent: the proxy never writes request lines (they can carry tokens in query strings)."""

    def _error(self, status: int, code: str, message: str, details: dict[str, Any]) -> None:
        body = json.dumps({"error": {"code": code, "message": message, "details": details}}).encode()
        self.send_response_only(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _read_body(self) -> bytes | None:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            chunks: list[bytes] = []
            total = 0
            while True:
                size_line = self.rfile.readline(1024)
                size = int(size_line.split(b";", 1)[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline(8192) not in (b"\r\n", b"\n", b""):
                        pass  # trailers
                    return b"".join(chunks)
                total += size
                if total > SERVICE_MAX_BODY_BYTES:
                    return None
                chunks.append(self.rfile.read(size))
                self.rfile.readline(8)
        length = int(self.headers.get("Content-Length") or 0)
        if length > SERVICE_MAX_BODY_BYTES:
            return None
        return self.rfile.read(length) if length > 0 else b""

    def _forward(self) -> None:
        raw_path, _, query = self.path.partition("?")
        parts = raw_path.lstrip("/").split("/", 1)
        service = unquote(parts[0])
        rest = "/" + (parts[1] if len(parts) > 1 else "")
        if query:
            rest += "?" + query
        namespace = self.server.namespace
        if not service:
            self._error(404, "not_found", "no service named in the path", {"namespace": namespace})
            return
        try:
            body = self._read_body()
        except ValueError:
            self._error(400, "bad_request", "unreadable request body", {"service": service})
            return
        if body is None:
            self._error(413, "payload_too_large", "request body too large", {"service": service})
            return
        port = self.server.router.route(namespace, service)
        if port == UNKNOWN:
            self._error(404, "not_found", f"service {service!r} does not exist", {"service": service})
            return
        if not isinstance(port, int):
            self._error(502, "bad_gateway", f"no running version of {service!r}", {"service": service})
            return
        headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_BY_HOP}
        headers.pop("Content-Length", None)
        headers["Content-Length"] = str(len(body))
        headers["X-Forwarded-For"] = self.client_address[0]
        headers["X-Forwarded-Prefix"] = "/" + parts[0]
        if "Host" in self.headers:
            headers["X-Forwarded-Host"] = self.headers["Host"]
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=UPSTREAM_TIMEOUT_SECONDS)
        try:
            conn.request(
                self.command, rest, body=body if body or self.command not in ("GET", "HEAD") else None, headers=headers
            )
            response = conn.getresponse()
            payload = response.read()
            upstream_headers = response.getheaders()
            status, reason = response.status, response.reason
        except (OSError, http.client.HTTPException) as exc:
            self._error(
                502,
                "bad_gateway",
                f"service {service!r} did not answer",
                {"service": service, "reason": type(exc).__name__},
            )
            return
        finally:
            conn.close()
        self.send_response_only(status, reason)
        length: str | None = None
        for key, value in upstream_headers:
            lower = key.lower()
            if lower == "content-length":
                length = value
            elif lower not in HOP_BY_HOP:
                self.send_header(key, value)
        if self.command == "HEAD":
            self.send_header("Content-Length", length if length is not None else str(len(payload)))
            self.end_headers()
            return
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    do_GET = _forward
    do_POST = _forward
    do_PUT = _forward
    do_PATCH = _forward
    do_DELETE = _forward
    do_HEAD = _forward
    do_OPTIONS = _forward


class NamespaceProxy:
    """A running proxy: ``start`` binds ``host:port`` (0 for any free port), serving in a daemon thread."""

    def __init__(self, namespace: str, router: Router, host: str, port: int) -> None:
        self.namespace = namespace
        self._server = _Server((host, port), namespace, router)
        self.host = host
        self.port: int = self._server.server_address[1]
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.2}, name=f"proxy-{namespace}", daemon=True
        )
        self._thread.start()

    @classmethod
    def bind(cls, namespace: str, router: Router, host: str, preferred_port: int | None) -> NamespaceProxy:
        """On ``preferred_port`` when it is free, else on any free port."""
        if preferred_port:
            try:
                return cls(namespace, router, host, preferred_port)
            except OSError:
                pass
        return cls(namespace, router, host, 0)

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=2)
