"""The local front end: ``chalice local``'s gateway (chalice.local.LocalGateway, the same code that
``chalice local`` serves) behind a thin layer that answers what API Gateway answers before the app
runs in the project's error format, as the gateway responses of docs/api-gateway.md do on AWS:

- an unknown path: 404 ``not_found`` (API Gateway and chalice local say 403 "Missing Authentication Token");
- a body over 1 MiB: 413 ``payload_too_large``, refused before it is read.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path
from typing import Any

from chalice.config import Config
from chalice.local import ChaliceRequestHandler, LocalChalice, LocalDevServer, LocalGatewayException

ROOT = Path(__file__).resolve().parent.parent
MAX_BODY_BYTES = 1024 * 1024


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

    def _generic_handle(self) -> None:
        length = int(self.headers.get("content-length") or 0)
        if length > MAX_BODY_BYTES:
            body = _error(
                "payload_too_large",
                f"the body is {length} bytes; the limit is {MAX_BODY_BYTES}",
                {"limit": MAX_BODY_BYTES},
            )
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
