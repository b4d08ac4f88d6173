"""The ``WorkflowPort`` over Step Functions and the ``QueuePort`` over SQS. Which state machine or
queue a name means comes from the environment (``PLATFORM_SFN_<NAME>_ARN``, ``PLATFORM_QUEUE_<NAME>_URL``),
set by Terraform on AWS and by the local cloud locally."""

from __future__ import annotations

import json
import os
from typing import Any

from chalicelib.domain.errors import ConflictError


def _env_name(name: str) -> str:
    return name.upper().replace("-", "_")


class StepFunctionsWorkflows:
    def __init__(
        self,
        client: Any = None,
        *,
        region: str | None = None,
        endpoint_url: str | None = None,
        env: dict[str, str] | None = None,
    ) -> None:
        self._client = client
        self._region = region
        self._endpoint_url = endpoint_url
        self._env = env if env is not None else os.environ

    @property
    def client(self) -> Any:
        if self._client is None:
            import boto3

            self._client = boto3.client("stepfunctions", region_name=self._region, endpoint_url=self._endpoint_url)
        return self._client

    def arn(self, machine: str) -> str:
        key = f"PLATFORM_SFN_{_env_name(machine)}_ARN"
        if key not in self._env:
            raise RuntimeError(f"{key} is not set: the state machine {machine!r} is not configured")
        return self._env[key]

    def start(self, machine: str, name: str, payload: dict[str, Any]) -> str:
        try:
            answer = self.client.start_execution(
                stateMachineArn=self.arn(machine), name=name, input=json.dumps(payload)
            )
        except self.client.exceptions.ExecutionAlreadyExists as e:
            raise ConflictError(f"an execution named {name!r} exists", {"execution": name}) from e
        return str(answer["executionArn"])


class SqsQueues:
    def __init__(
        self,
        client: Any = None,
        *,
        region: str | None = None,
        endpoint_url: str | None = None,
        env: dict[str, str] | None = None,
    ) -> None:
        self._client = client
        self._region = region
        self._endpoint_url = endpoint_url
        self._env = env if env is not None else os.environ

    @property
    def client(self) -> Any:
        if self._client is None:
            import boto3

            self._client = boto3.client("sqs", region_name=self._region, endpoint_url=self._endpoint_url)
        return self._client

    def url(self, queue: str) -> str:
        key = f"PLATFORM_QUEUE_{_env_name(queue)}_URL"
        if key not in self._env:
            raise RuntimeError(f"{key} is not set: the queue {queue!r} is not configured")
        return self._env[key]

    def send(self, queue: str, body: dict[str, Any], *, dedup_id: str | None = None) -> str:
        attributes = {"dedup_id": {"DataType": "String", "StringValue": dedup_id}} if dedup_id else {}
        answer = self.client.send_message(
            QueueUrl=self.url(queue), MessageBody=json.dumps(body), MessageAttributes=attributes
        )
        return str(answer["MessageId"])
