"""hello: the smallest service the platform can run. Standard library only.

GET /health -> 200 "ok"; GET / -> JSON naming the service, its version and namespace, and a greeting.
Listens on $PORT (default 8080) on all interfaces; $HOST overrides the address (the local stage's runtime
sets it to 127.0.0.1).
"""

from __future__ import annotations

import json
import os
import signal
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Handler(BaseHTTPRequestHandler):
    server_version = "hello/1"

    def do_GET(self) -> None:
        path = self.path.split("?", 1)[0]
        if path == "/health":
            self.reply(200, b"ok", "text/plain; charset=utf-8")
        elif path == "/":
            body = {
                "service": os.environ.get("MICRO_SERVICE", "hello"),
                "version": os.environ.get("MICRO_VERSION"),
                "namespace": os.environ.get("MICRO_NAMESPACE"),
                "greeting": os.environ.get("GREETING", "hello"),
            }
            self.reply(200, json.dumps(body).encode(), "application/json")
        else:
            self.reply(404, b'{"error": "not found"}', "application/json")

    def reply(self, status: int, body: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:  # one line per request, on stdout
        if self.path.split("?", 1)[0] == "/health":
            return  # the platform checks health several times a second: keep the logs for people
        print(f"{self.address_string()} {format % args}", flush=True)


def main() -> None:
    port = int(os.environ.get("PORT", "8080"))
    host = os.environ.get("HOST", "0.0.0.0")  # noqa: S104 - a service listens on its pod's address
    server = ThreadingHTTPServer((host, port), Handler)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    print(f"hello listening on {host}:{port}", flush=True)
    try:
        server.serve_forever()
    finally:
        server.server_close()


if __name__ == "__main__":
    main()
