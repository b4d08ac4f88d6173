"""The ``WorkflowPort`` over Step Functions and the ``QueuePort`` over SQS. Which state machine or
queue a name means comes from the environment (``PLATFORM_SFN_<NAME>_ARN``, ``PLATFORM_QUEUE_<NAME>_URL``),
set by Terraform on AWS and by the local cloud locally."""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from typing import Any

from chalicelib.domain.errors import ConflictError, DependencyUnavailableError

SQS_BATCH = 10  # SendMessageBatch's limit


class _Configured:
    """A lazily built boto3 client, and names resolved from the environment."""

    SERVICE = ""
    ENV_KEY = ""  # e.g. PLATFORM_SFN_{}_ARN
    WHAT = ""

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

            self._client = boto3.client(self.SERVICE, region_name=self._region, endpoint_url=self._endpoint_url)
        return self._client

    def resolve(self, name: str) -> str:
        key = self.ENV_KEY.format(name.upper().replace("-", "_"))
        if key not in self._env:
            raise RuntimeError(f"{key} is not set: the {self.WHAT} {name!r} is not configured")
        return self._env[key]


class StepFunctionsWorkflows(_Configured):
    SERVICE, ENV_KEY, WHAT = "stepfunctions", "PLATFORM_SFN_{}_ARN", "state machine"

    def start(self, machine: str, name: str, payload: dict[str, Any]) -> str:
        try:
            answer = self.client.start_execution(
                stateMachineArn=self.resolve(machine), name=name, input=json.dumps(payload)
            )
        except self.client.exceptions.ExecutionAlreadyExists as e:
            raise ConflictError(f"an execution named {name!r} exists", {"execution": name}) from e
        return str(answer["executionArn"])


class SqsQueues(_Configured):
    SERVICE, ENV_KEY, WHAT = "sqs", "PLATFORM_QUEUE_{}_URL", "queue"

    def send(self, queue: str, body: dict[str, Any], *, dedup_id: str | None = None) -> str:
        attributes = {"dedup_id": {"DataType": "String", "StringValue": dedup_id}} if dedup_id else {}
        answer = self.client.send_message(
            QueueUrl=self.resolve(queue), MessageBody=json.dumps(body), MessageAttributes=attributes
        )
        return str(answer["MessageId"])

    def send_batch(self, queue: str, bodies: Sequence[dict[str, Any]]) -> None:
        url = self.resolve(queue)
        for start in range(0, len(bodies), SQS_BATCH):
            entries = [
                {"Id": str(i), "MessageBody": json.dumps(body)}
                for i, body in enumerate(bodies[start : start + SQS_BATCH])
            ]
            answer = self.client.send_message_batch(QueueUrl=url, Entries=entries)
            failed = answer.get("Failed") or []
            if failed:
                raise DependencyUnavailableError(
                    f"SQS did not take {len(failed)} of {len(entries)} messages for {queue!r}",
                    {"dependency": "sqs", "queue": queue, "codes": sorted({f.get("Code", "") for f in failed})},
                )
