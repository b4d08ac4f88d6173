"""Lambda functions of the local cloud: the declared ``functions/`` handlers, run in this process.

moto's Lambda without Docker only echoes its input; localcloud/moto_patches.py routes its invokes,
from a Step Functions Task or from boto3, to this router, which runs the handler.
An exception becomes what Lambda answers: the ``x-amz-function-error`` header and
``{"errorType": <class name>, "errorMessage": ...}``, so ``Retry``/``Catch`` on the class name work."""

from __future__ import annotations

import importlib
import logging
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from localcloud.declaration import Declaration

log = logging.getLogger("localcloud.lambdas")


@dataclass
class LambdaContext:
    """The attributes of the Lambda context object that handlers (and Powertools) read."""

    function_name: str
    memory_limit_in_mb: int = 512
    timeout_seconds: int = 60
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    invoked_function_arn: str = ""
    log_group_name: str = ""
    log_stream_name: str = ""
    _deadline: float = field(default_factory=lambda: 0.0)

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))


def load_handler(spec: str) -> Callable[[Any, Any], Any]:
    """``"functions.outbox_relay.handler.handler"`` -> the function."""
    module, _, name = spec.rpartition(".")
    handler: Callable[[Any, Any], Any] = getattr(importlib.import_module(module), name)
    return handler


class FunctionRouter:
    """Runs declared functions by name (plain, with the stage suffix, or as an ARN)."""

    def __init__(self, decl: Declaration) -> None:
        self.decl = decl
        self.functions = {f["name"]: f for f in decl.list("functions")}
        self.invocations: dict[str, int] = {}
        self._lock = threading.Lock()

    def declared_name(self, name_or_arn: str) -> str | None:
        name = name_or_arn.split(":function:")[-1].split(":")[0]
        for declared in self.functions:
            if name in (declared, self.decl.name(declared)):
                return declared
        return None

    def invoke(self, name_or_arn: str, event: Any) -> tuple[Any, str | None]:
        """Run the function; answer (result, None) or (error payload, "Unhandled")."""
        declared = self.declared_name(name_or_arn)
        if declared is None:
            return {"errorType": "ResourceNotFoundException", "errorMessage": f"no function {name_or_arn}"}, "Unhandled"
        spec = self.functions[declared]
        with self._lock:
            self.invocations[declared] = self.invocations.get(declared, 0) + 1
        timeout = int(spec.get("timeout", 60))
        context = LambdaContext(
            function_name=self.decl.name(declared),
            timeout_seconds=timeout,
            invoked_function_arn=self.decl.function_arn(declared),
            _deadline=time.monotonic() + timeout,
        )
        try:
            return load_handler(spec["handler"])(event, context), None
        except Exception as e:
            log.info("function %s raised %s", declared, type(e).__name__)
            return {"errorType": type(e).__name__, "errorMessage": str(e)[:1000]}, "Unhandled"
