"""Local stand-ins for third parties: real HTTP servers on loopback speaking the third party's wire
protocol for the calls the platform makes, started by the local cloud (``make run``) and reused by the
tests. Each module's docstring says which real system and version it mirrors, with the documentation
page or source file of each behaviour, what it implements and what it leaves out.

- ``localcloud.standins.github`` (``GitHubStandIn``): the GitHub REST API (a subset, under ``/api/v3``,
  which PyGithub takes as a GitHub Enterprise ``base_url``), the GitHub App's OAuth, git hosting of the
  seeded organization's repositories and signed webhook deliveries to the platform.
- ``localcloud.standins.slack`` (``SlackStandIn``): Slack's incoming webhooks, as a receiver.
- ``localcloud.standins.webhooks`` (``WebhookReceiverStandIn``): a user's endpoint for the platform's
  signed alert webhooks, verifying them as the Standard Webhooks specification says.
- ``localcloud.standins.micro`` (``MicroStandIn``, ``NoProxy``): a micro v3.19.0 cluster's HTTP API
  gateway with its runtime, auth and api services (the region ``micro-local``); ``micro.cluster`` runs
  one as a process of its own, for the local cloud's regions.
- ``localcloud.standins.stripe`` (``StripeStandIn``): the Stripe API endpoints the platform calls, and
  Stripe's signed webhooks.

Every stand-in is a :class:`StandIn`: ``start()`` serves in a daemon thread (port 0 picks a free port;
a port in use is an ``OSError`` naming it), ``stop()`` closes the listener and every open connection,
``url`` is ``http://HOST:PORT``. Each one answers its stand-in-only routes under ``/_stand-in/``
(outside the third party's own paths). The server is the standard library's ``ThreadingHTTPServer``
(HTTP/1.1, no TLS); the stand-ins use the project's pinned libraries where the real formats need them
(PyJWT and cryptography for tokens and keys, requests for deliveries, standardwebhooks to verify).
"""

from __future__ import annotations

import contextlib
import errno
import logging
import socket
import threading
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self

__all__ = ["RawRequest", "RawResponse", "StandIn"]

log = logging.getLogger("localcloud.standins")


@dataclass
class RawRequest:
    """One HTTP request as the server read it."""

    method: str
    target: str  # path and query, as sent
    headers: Mapping[str, str]  # lower-case names
    body: bytes
    base: str  # "http://host:port" as the client addressed us (from the Host header)


@dataclass
class RawResponse:
    status: int
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], handler: type[BaseHTTPRequestHandler], stand_in: StandIn) -> None:
        self.stand_in = stand_in
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()
        super().__init__(address, handler)

    def process_request(self, request: Any, client_address: Any) -> None:
        with self._connections_lock:
            self._connections.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self._connections_lock:
            self._connections.discard(request)
        super().shutdown_request(request)

    def close_connections(self) -> None:
        """Keep-alive connections outlive ``shutdown()``: end them so a stopped stand-in answers nothing."""
        with self._connections_lock:
            connections = list(self._connections)
            self._connections.clear()
        for connection in connections:
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body go out in two writes: no 40 ms delayed-ACK stall
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        # Quiet: URLs can carry secrets (a Slack webhook's path is its credential).
        pass

    def _dispatch(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length > 0 else b""
        headers = {k.lower(): v for k, v in self.headers.items()}
        stand_in = self.server.stand_in
        base = f"http://{headers['host']}" if headers.get("host") else stand_in.url
        request = RawRequest(self.command, self.path, headers, body, base)
        try:
            response = stand_in.handle(request)
        except Exception:
            log.exception("%s: error answering %s", stand_in.name, self.command)
            response = RawResponse(500, b"internal error", {"Content-Type": "text/plain; charset=utf-8"})
        self.send_response(response.status)
        for name, value in response.headers.items():
            self.send_header(name, value)
        no_body = response.status in (204, 304) or 100 <= response.status < 200
        if not no_body:
            self.send_header("Content-Length", str(len(response.body)))
        self.end_headers()
        if self.command != "HEAD" and not no_body:
            self.wfile.write(response.body)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = _dispatch


class StandIn(ABC):
    """Base of the stand-ins: a threaded HTTP server whose requests go to :meth:`handle`."""

    name = "stand-in"

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self.host = host
        self.port = port
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    @abstractmethod
    def handle(self, request: RawRequest) -> RawResponse:
        """The stand-in's answer to one request."""

    def start(self) -> Self:
        if self._server is not None:
            return self
        try:
            server = _Server((self.host, self.port), _Handler, self)
        except OSError as error:
            if error.errno == errno.EADDRINUSE:
                raise OSError(error.errno, f"{self.name}: port {self.port} on {self.host} is already in use") from error
            raise OSError(error.errno, f"{self.name}: cannot listen on {self.host}:{self.port}: {error}") from error
        self.port = int(server.server_address[1])
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.05}, name=f"{self.name}:{self.port}", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        server, thread = self._server, self._thread
        self._server = self._thread = None
        if server is None:
            return
        server.shutdown()
        server.server_close()
        server.close_connections()
        if thread is not None:
            thread.join(timeout=5)

    @property
    def running(self) -> bool:
        return self._server is not None

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
