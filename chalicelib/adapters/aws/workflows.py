"""The ``WorkflowPort`` over Step Functions and the ``QueuePort`` over SQS. Which state machine, queue
or bucket a name means comes from the environment (``PLATFORM_SFN_<NAME>_ARN``, ``PLATFORM_QUEUE_<NAME>_URL``,
``PLATFORM_BUCKET_<NAME>_NAME``), set by Terraform on AWS and by the local cloud locally.

A message bigger than its queue allows (SQS counts the body's UTF-8 bytes plus every attribute's name, type
and value against the queue's ``MaximumMessageSize``) goes through a claim check, as the SQS Extended Client
does: the body is put in the ``queue-payloads`` bucket and the message carries its key in the
``claim_check`` attribute. The consumer reads it back (:meth:`SqsQueues.read`) and deletes it once the
message is handled (:meth:`SqsQueues.settle`); the bucket's lifecycle rule expires what is left (a message
dead-lettered and never redriven) after the dead-letter queue's retention."""

from __future__ import annotations

import json
import os
import uuid
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

    def status(self, machine: str, name: str) -> str | None:
        machine_arn = self.resolve(machine)
        execution_arn = f"{machine_arn.replace(':stateMachine:', ':execution:', 1)}:{name}"
        try:
            return str(self.client.describe_execution(executionArn=execution_arn)["status"])
        except self.client.exceptions.ExecutionDoesNotExist:
            return None


SQS_MESSAGE_LIMIT = 262_144  # bytes: SQS's long-standing cap, and Terraform's default MaximumMessageSize
CLAIM_CHECK = "claim_check"  # the message attribute holding an offloaded body's key
PAYLOAD_BUCKET = "queue-payloads"  # infra/resources.json "buckets"


def message_size(body: str, attributes: dict[str, dict[str, str]]) -> int:
    """What SQS counts against ``MaximumMessageSize``: the body's bytes and each attribute's name, type and value."""
    size = len(body.encode())
    for name, value in attributes.items():
        size += len(name.encode()) + len(value["DataType"].encode()) + len(value.get("StringValue", "").encode())
    return size


class StepFunctionsTaskTokens(_Configured):
    """The ``TaskTokenPort``: ``SendTaskSuccess``/``SendTaskFailure``. A token whose task is over (timed
    out, its execution ended, an unknown token) is NotFoundError."""

    SERVICE, ENV_KEY, WHAT = "stepfunctions", "PLATFORM_SFN_{}_ARN", "state machine"
    CAUSE_LIMIT = 32768  # SendTaskFailure's cause

    def succeed(self, token: str, output: dict[str, Any]) -> None:
        try:
            self.client.send_task_success(taskToken=token, output=json.dumps(output))
        except (self.client.exceptions.TaskTimedOut, self.client.exceptions.TaskDoesNotExist) as e:
            raise _gone() from e
        except self.client.exceptions.InvalidToken as e:
            raise _gone() from e

    def fail(self, token: str, error: str, cause: str) -> None:
        try:
            self.client.send_task_failure(taskToken=token, error=error[:256], cause=cause[: self.CAUSE_LIMIT])
        except (
            self.client.exceptions.TaskTimedOut,
            self.client.exceptions.TaskDoesNotExist,
            self.client.exceptions.InvalidToken,
        ) as e:
            raise _gone() from e


def _gone() -> Exception:
    from chalicelib.domain.errors import NotFoundError

    return NotFoundError("the task this token belongs to is over (timed out, or its execution ended)", {})


class SqsQueues(_Configured):
    SERVICE, ENV_KEY, WHAT = "sqs", "PLATFORM_QUEUE_{}_URL", "queue"

    def __init__(self, client: Any = None, *, s3_client: Any = None, **kwargs: Any) -> None:
        super().__init__(client, **kwargs)
        self._s3 = s3_client
        self._limits: dict[str, int] = {}

    @property
    def s3(self) -> Any:
        if self._s3 is None:
            import boto3

            self._s3 = boto3.client("s3", region_name=self._region, endpoint_url=self._endpoint_url)
        return self._s3

    def bucket(self) -> str:
        key = f"PLATFORM_BUCKET_{PAYLOAD_BUCKET.upper().replace('-', '_')}_NAME"
        if key not in self._env:
            raise RuntimeError(f"{key} is not set: the bucket {PAYLOAD_BUCKET!r} is not configured")
        return self._env[key]

    def limit(self, url: str) -> int:
        """The queue's ``MaximumMessageSize`` (asked once per queue), never more than SQS_MESSAGE_LIMIT."""
        if url not in self._limits:
            try:
                attributes = self.client.get_queue_attributes(QueueUrl=url, AttributeNames=["MaximumMessageSize"])
                declared = int(attributes["Attributes"]["MaximumMessageSize"])
            except Exception:  # the long-standing cap is always safe
                declared = SQS_MESSAGE_LIMIT
            self._limits[url] = min(declared, SQS_MESSAGE_LIMIT)
        return self._limits[url]

    def send(self, queue: str, body: dict[str, Any], *, dedup_id: str | None = None, delay_seconds: int = 0) -> str:
        url = self.resolve(queue)
        text = json.dumps(body, ensure_ascii=False, separators=(",", ":"))  # escaping would double non-ASCII text
        attributes = {"dedup_id": {"DataType": "String", "StringValue": dedup_id}} if dedup_id else {}
        if message_size(text, attributes) > self.limit(url):
            key = f"{queue}/{uuid.uuid4().hex}"
            self.s3.put_object(Bucket=self.bucket(), Key=key, Body=text.encode(), ContentType="application/json")
            attributes[CLAIM_CHECK] = {"DataType": "String", "StringValue": key}
            text = json.dumps({CLAIM_CHECK: key})
        # DelaySeconds: the message stays invisible to consumers that long, at most 15 minutes (SQS
        # Developer Guide, "Amazon SQS message timers").
        delay = {"DelaySeconds": max(0, min(int(delay_seconds), 900))} if delay_seconds else {}
        answer = self.client.send_message(QueueUrl=url, MessageBody=text, MessageAttributes=attributes, **delay)
        return str(answer["MessageId"])

    @staticmethod
    def claim_check(record: dict[str, Any]) -> str | None:
        """The S3 key of an offloaded body, from a Lambda SQS record (``messageAttributes``)."""
        attribute = (record.get("messageAttributes") or {}).get(CLAIM_CHECK) or {}
        key = attribute.get("stringValue")
        return str(key) if key else None

    def read(self, record: dict[str, Any]) -> dict[str, Any] | None:
        """A consumed message's body, fetched from the bucket when it was offloaded. None when the offloaded
        body is gone: it is deleted only after its message was handled, so this is a second delivery of a
        message handled already (SQS delivers at least once)."""
        key = self.claim_check(record)
        if key is None:
            message: dict[str, Any] = json.loads(record["body"])
            return message
        try:
            stored = self.s3.get_object(Bucket=self.bucket(), Key=key)
        except self.s3.exceptions.NoSuchKey:
            return None
        offloaded: dict[str, Any] = json.loads(stored["Body"].read())
        return offloaded

    def settle(self, record: dict[str, Any]) -> None:
        """After a message was handled: delete its offloaded body (if any)."""
        key = self.claim_check(record)
        if key is not None:
            self.s3.delete_object(Bucket=self.bucket(), Key=key)

    def dead_letter_depths(self) -> dict[str, int]:
        """Messages waiting in the dead-letter queue of every configured queue (``PLATFORM_QUEUE_<NAME>_URL``),
        by queue name: its ``RedrivePolicy`` names the dead-letter queue, ``ApproximateNumberOfMessages`` counts."""
        depths: dict[str, int] = {}
        for key, url in sorted(self._env.items()):
            if not (key.startswith("PLATFORM_QUEUE_") and key.endswith("_URL")):
                continue
            name = key.removeprefix("PLATFORM_QUEUE_").removesuffix("_URL").lower().replace("_", "-")
            attributes = self.client.get_queue_attributes(QueueUrl=url, AttributeNames=["RedrivePolicy"])
            policy = attributes.get("Attributes", {}).get("RedrivePolicy")
            if not policy:
                continue
            dlq_name = json.loads(policy)["deadLetterTargetArn"].rsplit(":", 1)[-1]
            dlq_url = self.client.get_queue_url(QueueName=dlq_name)["QueueUrl"]
            counted = self.client.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["ApproximateNumberOfMessages"])
            depths[name] = int(counted["Attributes"]["ApproximateNumberOfMessages"])
        return depths

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
