"""The Terraform runner: a container task, not a Lambda (an apply outlives any Lambda).

    python -m functions.terraform_runner        # the message in PLATFORM_TASK_INPUT (or on stdin)

The message is what the region state machine's Plan, Apply or Destroy step sent with its task token:
``{"action": "plan"|"apply"|"destroy", "region", "attempt", "token"}``. The runner runs the real
``terraform`` (through the one adapter, chalicelib/adapters/terraform.py) in the region's working
directory, then answers Step Functions: ``SendTaskSuccess`` with ``{"summary", "outputs"}``, or
``SendTaskFailure`` with the error ``TerraformFailedError`` and a JSON cause ``{"reason", "log_excerpt"}``.

On AWS an EventBridge Pipe starts it as an ECS (Fargate) task for each message of the terraform-runs
queue, the message in its environment (infra/modules/terraform-runner); in the local cloud a worker of
the local cloud (localcloud/tasks.py) starts it as a process for each message of the same queue."""

from __future__ import annotations

import json
import os
import sys


def main() -> int:
    os.environ.setdefault("TF_IN_AUTOMATION", "1")
    os.environ.setdefault("CHECKPOINT_DISABLE", "1")  # no version check against HashiCorp's servers
    raw = os.environ.get("PLATFORM_TASK_INPUT") or sys.stdin.read()
    message = json.loads(raw)
    if isinstance(message, str):  # a queue body handed on as a JSON string
        message = json.loads(message)
    token = message["token"]
    from chalicelib.composition import get_container
    from chalicelib.logs import get_logger

    container = get_container()
    try:
        result = container.region_service.run_terraform(container.terraform, message)
    except Exception as e:  # the runner itself failed (an unknown region, a bad message)
        get_logger().exception("terraform runner failed", extra={"region": message.get("region")})
        container.task_tokens.fail(
            token, "TerraformFailedError", json.dumps({"reason": f"the runner failed: {type(e).__name__}"})
        )
        return 1
    if result.ok:
        summary = result.summary
        output = {
            "summary": None
            if summary is None
            else {"add": summary.add, "change": summary.change, "destroy": summary.destroy},
            "outputs": result.outputs,
            "log": result.log,
        }
        container.task_tokens.succeed(token, output)
        get_logger().info(
            "terraform run done", extra={"region": message.get("region"), "action": message.get("action")}
        )
        return 0
    cause = json.dumps({"reason": result.reason, "log_excerpt": result.log_excerpt, "log": result.log})
    container.task_tokens.fail(token, "TerraformFailedError", cause)
    get_logger().warning(
        "terraform run failed",
        extra={"region": message.get("region"), "action": message.get("action"), "reason": result.reason},
    )
    return 1


if __name__ == "__main__":
    sys.exit(main())
