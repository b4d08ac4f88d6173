"""The local front end: ``chalice local``'s gateway (chalice.local.LocalGateway, the same code that
``chalice local`` serves) behind a thin layer that answers what API Gateway answers before the app
runs in the project's error format, as the gateway responses of docs/api-gateway.md do on AWS:

- an unknown path: 404 ``not_found`` (API Gateway and chalice local say 403 "Missing Authentication Token");
- a body over 1 MiB: 413 ``payload_too_large``, refused before it is read;
- a ``Content-Length`` that is not one whole number: 400 ``bad_request`` (the body cannot be delimited);
- a ``Transfer-Encoding`` (a chunked body, which chalice local would silently drop): 411 ``length_required``;
- what http.server answers itself through ``send_error`` (a bad request line 400, a request line over
  64 KiB 414, a header line over 64 KiB or over 100 headers 431, HTTP/2 and later 505, and, for a
  method it has no handler for, 501, which is answered as 405 ``method_not_allowed`` with ``Allow``,
  as the app answers a wrong method).
Each of these closes the connection: what follows the request on it cannot be trusted.
"""

from __future__ import annotations

import argparse
import json
import os
import re
from http import HTTPStatus
from pathlib import Path
from typing import Any

from chalice.app import Chalice
from chalice.config import Config
from chalice.local import ChaliceRequestHandler, LocalChalice, LocalDevServer, LocalGatewayException, RouteMatcher

ROOT = Path(__file__).resolve().parent.parent
CONTENT_LENGTH = re.compile(r"[0-9]{1,18}")  # digits only: no sign, no spaces inside, no other digit sets
# http.server's own error answers (BaseHTTPRequestHandler.send_error), in the project's format.
SERVER_ERRORS: dict[int, tuple[str, str]] = {
    400: ("bad_request", "the request line is malformed"),
    414: ("uri_too_long", "the request line is over 64 KiB"),
    431: ("request_header_fields_too_large", "a header line is over 64 KiB, or there are over 100 headers"),
    505: ("http_version_not_supported", "HTTP/1.0 and HTTP/1.1 are supported"),
}


def _error(code: str, message: str, details: dict[str, Any] | None = None) -> bytes:
    return json.dumps({"error": {"code": code, "message": message, "details": details or {}}}).encode()


def stage_environment(stage: str, config_file: Path = ROOT / ".chalice" / "config.json") -> dict[str, str]:
    """The environment ``chalice local --stage STAGE`` would set: top-level then stage variables."""
    config = json.loads(config_file.read_text())
    if stage not in config.get("stages", {}):
        raise SystemExit(f"unknown stage {stage!r}: .chalice/config.json has {', '.join(config['stages'])}")
    env = dict(config.get("environment_variables", {}))
    env.update(config["stages"][stage].get("environment_variables", {}))
    return env


def gateway_error(error: LocalGatewayException) -> tuple[int, dict[str, str], bytes]:
    """API Gateway's own answers, in the project's format."""
    headers = {k: v for k, v in (error.headers or {}).items() if k.lower() != "x-amzn-errortype"}
    headers["Content-Type"] = "application/json"
    body = error.body or b""
    if error.CODE == 403 and (b"Missing Authentication Token" in body or b"Authorization header requires" in body):
        return 404, headers, _error("not_found", "no such route")
    if error.CODE == 401:
        return 401, headers, _error("unauthenticated", "no valid credential")
    return error.CODE, headers, _error("forbidden", "forbidden")


class FrontEndHandler(ChaliceRequestHandler):
    server_version = "platform-local"

    def __init__(self, request: Any, client_address: Any, server: Any, app_object: Chalice, config: Config) -> None:
        self.app_object = app_object  # set first: the base class handles the request in __init__
        super().__init__(request, client_address, server, app_object, config)

    def _send_json_error(
        self, status: int, code: str, message: str, details: dict[str, Any] | None = None, **headers: str
    ) -> None:
        self.close_connection = True
        all_headers = {"Content-Type": "application/json", "Connection": "close", **headers}
        if self.command == "HEAD":
            self._send_http_response(status, all_headers, None)
        else:
            self._send_http_response(status, all_headers, _error(code, message, details))

    def allowed_methods(self, path: str) -> list[str] | None:
        """The methods the app serves on ``path``, or None when no route matches it."""
        try:
            route = RouteMatcher(list(self.app_object.routes)).match_route(path).route
        except ValueError:
            return None
        return sorted(self.app_object.routes[route])

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        """Every answer http.server makes itself, in the project's format instead of its HTML page."""
        # An unparsed version is taken as HTTP/0.9, whose answers have no status line: give one.
        self.request_version = "HTTP/1.0" if self.request_version == "HTTP/0.9" else self.request_version
        if code == HTTPStatus.NOT_IMPLEMENTED and self.command:  # no do_<METHOD>: an unknown method
            allowed = self.allowed_methods(self.path)
            if allowed is None:
                self._send_json_error(404, "not_found", "no such route")
                return
            self._send_json_error(
                405,
                "method_not_allowed",
                f"{self.command} is not allowed here",
                {"allowed_methods": allowed},
                Allow=", ".join(allowed),
            )
            return
        error_code, text = SERVER_ERRORS.get(code, ("bad_request" if code < 500 else "internal_error", "refused"))
        self._send_json_error(code, error_code, text)

    def _generic_handle(self) -> None:
        if self.headers.get("transfer-encoding"):  # chalice local reads Content-Length bodies only
            self._send_json_error(
                411, "length_required", "send the body with a Content-Length (chunked bodies are not read)", {}
            )
            return
        lengths = [v.strip() for v in self.headers.get_all("content-length") or []]
        if any(not CONTENT_LENGTH.fullmatch(v) for v in lengths) or len({int(v) for v in lengths}) > 1:
            self._send_json_error(
                400, "bad_request", "Content-Length must be one whole number of bytes", {"header": "Content-Length"}
            )
            return
        length = int(lengths[0]) if lengths else 0
        # The app's own limit, checked here before the body is read. Imported here, not at the top: the
        # registry reads the stage when first imported, after make_server has set the stage's environment.
        from chalicelib.api.registry import check_body_size
        from chalicelib.domain.errors import PayloadTooLargeError

        try:
            check_body_size(length)
        except PayloadTooLargeError as e:
            body = _error(e.code, e.message, e.details)
            self.close_connection = True
            self._send_http_response(413, {"Content-Type": "application/json", "Connection": "close"}, body)
            return
        super()._generic_handle()

    def _send_error_response(self, error: LocalGatewayException) -> None:
        code, headers, body = gateway_error(error)
        self._send_http_response(code, headers, body)

    do_GET = do_PUT = do_POST = do_HEAD = do_DELETE = do_PATCH = do_OPTIONS = _generic_handle

    def log_message(self, format: str, *args: Any) -> None:  # the app logs each request as JSON
        pass


def make_server(stage: str, host: str, port: int) -> LocalDevServer:
    """Import the app with the stage's environment (the caller's environment wins) and serve it."""
    for key, value in stage_environment(stage).items():
        os.environ.setdefault(key, value)
    from app import app

    if not isinstance(app, LocalChalice):
        # As chalice local does: the current request becomes thread-local, for a threaded server.
        app.__class__ = LocalChalice
    config = Config(chalice_stage=stage, config_from_disk=json.loads((ROOT / ".chalice" / "config.json").read_text()))
    try:
        return LocalDevServer(app, config, host, port, handler_cls=FrontEndHandler)
    except OSError as e:
        raise SystemExit(f"cannot listen on {host}:{port}: {e.strerror} (set PLATFORM_API_PORT to another port)") from e


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Serve the API on the local front end")
    parser.add_argument("--stage", default="local")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=int(os.environ.get("PLATFORM_API_PORT", "8000")))
    args = parser.parse_args(argv)
    server = make_server(args.stage, args.host, args.port)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server.server_close()


if __name__ == "__main__":
    main()
