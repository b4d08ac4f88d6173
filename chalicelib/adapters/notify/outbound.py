"""Outbound requests to addresses users give (Slack webhooks; signed webhooks later): the rules, and a
urllib opener that keeps them.

The rules (docs/architecture.md, "Outbound calls"):

- ``https`` only, no user information in the URL, a host name or address and nothing else odd;
- every address the host resolves to must be public (``ipaddress``'s ``is_global``: no loopback,
  private, link-local, shared, multicast or reserved address, IPv4-mapped IPv6 included). The check
  is made on the addresses the connection is then made to (resolved once, in the connection
  itself), so a name that resolves to a public address when checked and a private one when
  connecting (DNS rebinding) cannot slip through;
- redirects are not followed (a 3xx is the answer), no proxy from the environment is used;
- a short timeout, and at most ``MAX_RESPONSE_BYTES`` of the answer are read.

The local stage may also post over ``http`` to loopback (its Slack stand-in): ``OutboundPolicy.local()``.
"""

from __future__ import annotations

import http.client
import ipaddress
import socket
import urllib.request
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

CONNECT_TIMEOUT = 5.0
MAX_RESPONSE_BYTES = 16 * 1024
MAX_URL_LENGTH = 2048


class OutboundRefusedError(ValueError):
    """The address is not one the platform posts to (not an OSError: urllib must not wrap it)."""


@dataclass(frozen=True)
class OutboundPolicy:
    allow_http: bool = False
    allow_loopback: bool = False

    @classmethod
    def local(cls) -> OutboundPolicy:
        """The local stage: its stand-ins listen on http://127.0.0.1."""
        return cls(allow_http=True, allow_loopback=True)

    def check_url(self, url: str) -> tuple[str, str, int]:
        """(scheme, host, port) of an acceptable URL; OutboundRefusedError naming what is wrong."""
        if len(url) > MAX_URL_LENGTH:
            raise OutboundRefusedError(f"the URL is longer than {MAX_URL_LENGTH} characters")
        if any(c.isspace() or ord(c) < 0x20 or ord(c) == 0x7F for c in url):
            raise OutboundRefusedError("the URL holds spaces or control characters")
        try:
            parts = urlsplit(url)
            port = parts.port
        except ValueError as e:
            raise OutboundRefusedError("the URL cannot be read") from e
        scheme = parts.scheme.lower()
        if scheme != "https" and not (scheme == "http" and self.allow_http):
            raise OutboundRefusedError("the URL must be https")
        if parts.username is not None or parts.password is not None or "@" in parts.netloc:
            raise OutboundRefusedError("the URL must not carry user information")
        host = parts.hostname
        if not host:
            raise OutboundRefusedError("the URL has no host")
        literal = _literal_address(host)
        if literal is not None:
            self.check_address(str(literal))
        elif host.rstrip(".").lower() in ("localhost", "localhost.localdomain") and not self.allow_loopback:
            raise OutboundRefusedError("the URL's host is not a public address")
        return scheme, host, port or (443 if scheme == "https" else 80)

    def check_address(self, address: str) -> None:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
        if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
            ip = ip.ipv4_mapped
        if ip.is_loopback and self.allow_loopback:
            return
        if not ip.is_global or ip.is_multicast:
            raise OutboundRefusedError("the URL's host is not a public address")

    def resolve(self, host: str, port: int) -> list[tuple[Any, ...]]:
        """getaddrinfo, every address checked: OutboundRefusedError if any is not public."""
        try:
            infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except socket.gaierror as e:
            raise OSError(f"the host could not be resolved: {e.strerror}") from e
        for info in infos:
            self.check_address(str(info[4][0]))
        return infos

    def opener(self) -> urllib.request.OpenerDirector:
        """An opener that connects only to checked addresses, follows no redirect and uses no proxy."""
        policy = self
        opener = urllib.request.OpenerDirector()
        opener.add_handler(_CheckedHTTPSHandler(policy))
        if self.allow_http:
            opener.add_handler(_CheckedHTTPHandler(policy))
        opener.add_handler(urllib.request.HTTPDefaultErrorHandler())  # a non-2xx answer raises HTTPError
        opener.add_handler(urllib.request.HTTPErrorProcessor())
        return opener


def _literal_address(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(host.strip("[]").split("%", 1)[0])
    except ValueError:
        return None


def _checked_create_connection(policy: OutboundPolicy) -> Any:
    """``socket.create_connection`` that resolves once, checks every address, and connects only to them."""

    def create(address: tuple[str, int], timeout: Any = None, source_address: Any = None) -> socket.socket:
        host, port = address
        last: OSError | None = None
        for family, kind, proto, _, sockaddr in policy.resolve(host, port):
            sock = socket.socket(family, kind, proto)
            try:
                if isinstance(timeout, int | float):  # else socket's default (http.client's sentinel)
                    sock.settimeout(timeout)
                sock.connect(sockaddr)
                return sock
            except OSError as e:
                sock.close()
                last = e
        raise last or OSError(f"no address to connect to for {host}")

    return create


class _CheckedHTTPSConnection(http.client.HTTPSConnection):
    policy: OutboundPolicy

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._create_connection = _checked_create_connection(self.policy)


class _CheckedHTTPConnection(http.client.HTTPConnection):
    policy: OutboundPolicy

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._create_connection = _checked_create_connection(self.policy)


class _CheckedHTTPSHandler(urllib.request.HTTPSHandler):
    def __init__(self, policy: OutboundPolicy) -> None:
        super().__init__()
        self._connection = type("CheckedHTTPSConnection", (_CheckedHTTPSConnection,), {"policy": policy})

    def https_open(self, req: urllib.request.Request) -> http.client.HTTPResponse:
        return self.do_open(self._connection, req, context=self._context)  # type: ignore[attr-defined,arg-type]


class _CheckedHTTPHandler(urllib.request.HTTPHandler):
    def __init__(self, policy: OutboundPolicy) -> None:
        super().__init__()
        self._connection = type("CheckedHTTPConnection", (_CheckedHTTPConnection,), {"policy": policy})

    def http_open(self, req: urllib.request.Request) -> http.client.HTTPResponse:
        return self.do_open(self._connection, req)  # type: ignore[arg-type]


def read_capped(response: Any, limit: int = MAX_RESPONSE_BYTES) -> bytes:
    """At most ``limit`` bytes of an answer's body (the rest is never read)."""
    return bytes(response.read(limit))
