"""AWS on loopback: a moto server in this process, with DynamoDB requests serialised, Step
Functions executions really running, and the declared resources created on it.

moto's DynamoDB is not safe under concurrent requests (its backend has no lock of its own: 8 threads
sending 400 transactions, each a dedup put and a counter add, to a threaded moto server saw 403-408
accepted, a counter of 420-434 and a dedup item lost; with one lock, exactly 400), so every DynamoDB
request takes one lock. Only DynamoDB: a lock around a Lambda invoke would deadlock when the handler calls
DynamoDB back through the same server. With a journal attached (localcloud/journal.py), a write is
journalled, under the same lock, before its answer goes back: what is acknowledged survives a crash."""

from __future__ import annotations

import io
import json
import logging
import math
import threading
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any

import boto3
import requests
from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app
from werkzeug.serving import BaseWSGIServer, make_server

from localcloud.declaration import ACCOUNT, Declaration

if TYPE_CHECKING:
    from localcloud.journal import Journal

log = logging.getLogger("localcloud.aws")
DYNAMODB_TARGET = "DynamoDB_20120810."


def service_of(environ: dict[str, Any]) -> str | None:
    """The AWS service a signed request is for (``.../<region>/<service>/aws4_request``)."""
    auth = environ.get("HTTP_AUTHORIZATION", "")
    marker = auth.find("/aws4_request")
    if marker < 0:
        return None
    return auth[:marker].rsplit("/", 1)[-1] or None


def region_of(environ: dict[str, Any]) -> str:
    """The region of a signed request (``.../<date>/<region>/<service>/aws4_request``)."""
    auth = environ.get("HTTP_AUTHORIZATION", "")
    marker = auth.find("/aws4_request")
    parts = auth[:marker].split("/") if marker >= 0 else []
    return parts[-2] if len(parts) >= 2 else "us-east-1"


WRITE_OPERATIONS = ("PutItem", "UpdateItem", "DeleteItem", "BatchWriteItem", "TransactWriteItems")


class WriteUnits:
    """DynamoDB write capacity units of the requests the local cloud serves, counted from each
    request and the items it touched, by DynamoDB's on-demand rules
    (docs.aws.amazon.com/amazondynamodb/latest/developerguide/read-write-operations.html):

    - a write costs 1 unit per started KB of the larger of the item before and after it (a delete: the
      item deleted), at least 1; a write whose condition failed still costs it;
    - every item of a TransactWriteItems costs twice that (prepare and commit), a cancelled
      transaction included; a ConditionCheck is counted like a write of its item (conservative);
    - each global secondary index the write changes costs 1 unit per started KB of the projected item
      (the table's indexes project ALL): an item entering, leaving, or changed while in the index is one
      index write, a changed index key two (delete + put). Kept apart in ``index_units``: AWS does not
      say whether index writes of a transaction are doubled (``index_units`` counts them once).

    Item sizes are moto's (attribute names + values; a number counted as its decimal text, which is
    more than DynamoDB's roughly digits/2 + 1 bytes): the count errs high, never low."""

    def __init__(self) -> None:
        self.units = 0  # the table's
        self.index_units: dict[str, int] = {}
        self.requests: dict[str, int] = {}

    def measure(self, environ: dict[str, Any], body: bytes, serve: Callable[[], Any]) -> Any:
        from moto.dynamodb.models import dynamodb_backends

        operation = environ.get("HTTP_X_AMZ_TARGET", "").removeprefix(DYNAMODB_TARGET)
        if operation not in WRITE_OPERATIONS:
            return serve()
        backend = dynamodb_backends[ACCOUNT][region_of(environ)]
        try:
            writes = self._writes(backend, operation, json.loads(body or b"{}"))
            before = [_snapshot(backend.get_item(table, key)) for table, key, _ in writes]
        except Exception:  # a request moto will refuse anyway (unknown table, bad key): nothing written
            return serve()
        answer = serve()
        self.requests[operation] = self.requests.get(operation, 0) + 1
        for (table_name, key, factor), old in zip(writes, before, strict=True):
            new = _snapshot(backend.get_item(table_name, key))
            size = max(old[0], new[0])
            self.units += factor * max(1, math.ceil(size / 1024))
            for index in backend.get_table(table_name).global_indexes or []:
                units = _index_writes(index.schema_key_attrs, old[1], new[1]) * max(1, math.ceil(size / 1024))
                if units:
                    self.index_units[index.name] = self.index_units.get(index.name, 0) + units
        return answer

    @staticmethod
    def _writes(backend: Any, operation: str, request: dict[str, Any]) -> list[tuple[str, dict[str, Any], int]]:
        """(table, key, cost factor) of every item the request writes."""

        def key_of(table_name: str, item_or_key: dict[str, Any]) -> dict[str, Any]:
            table = backend.get_table(table_name)
            names = [table.hash_key_attr] + ([table.range_key_attr] if table.range_key_attr else [])
            return {n: item_or_key[n] for n in names}

        if operation == "PutItem":
            return [(request["TableName"], key_of(request["TableName"], request["Item"]), 1)]
        if operation in ("UpdateItem", "DeleteItem"):
            return [(request["TableName"], key_of(request["TableName"], request["Key"]), 1)]
        if operation == "BatchWriteItem":
            out = []
            for table_name, writes in request["RequestItems"].items():
                for w in writes:
                    what = w["PutRequest"]["Item"] if "PutRequest" in w else w["DeleteRequest"]["Key"]
                    out.append((table_name, key_of(table_name, what), 1))
            return out
        out = []
        for entry in request["TransactItems"]:
            (kind, op), *_ = entry.items()
            out.append((op["TableName"], key_of(op["TableName"], op["Item"] if kind == "Put" else op["Key"]), 2))
        return out


def _snapshot(item: Any) -> tuple[int, dict[str, Any] | None]:
    """(size in bytes, attributes) of an item as it is now (moto changes items in place)."""
    return (int(item.size()), item.to_json()["Attributes"]) if item is not None else (0, None)


def _index_writes(key_attrs: list[str], old: dict[str, Any] | None, new: dict[str, Any] | None) -> int:
    """Index writes caused by one item changing from ``old`` to ``new`` (attributes, or None)."""

    def index_key(item: dict[str, Any] | None) -> tuple[str, ...] | None:
        if item is None or any(a not in item for a in key_attrs):
            return None
        return tuple(json.dumps(item[a], sort_keys=True) for a in key_attrs)

    before, after = index_key(old), index_key(new)
    if before is None and after is None:
        return 0
    if before is None or after is None:
        return 1
    if before != after:
        return 2
    return 0 if old == new else 1


class SerialisedDynamoDB:
    """WSGI middleware: one DynamoDB request at a time; everything else passes straight through.
    With ``journal`` set, each successful write is journalled before its answer is sent. With
    ``count_write_units`` on (benchmarks), DynamoDB writes are also counted in ``write_units``."""

    def __init__(self, app: Callable[..., Iterable[bytes]]) -> None:
        self.app = app
        self.lock = threading.RLock()
        self.journal: Journal | None = None
        self.dynamodb_requests = 0
        # Every AWS API request, by service (from the SigV4 credential scope): what benchmarks count.
        self.requests_by_service: dict[str, int] = {}
        self.requests_by_operation: dict[str, int] = {}  # by X-Amz-Target (JSON-protocol services)
        self._count_lock = threading.Lock()
        self.count_write_units = False
        self.write_units = WriteUnits()

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        service = service_of(environ)
        if service:
            with self._count_lock:
                self.requests_by_service[service] = self.requests_by_service.get(service, 0) + 1
                target = environ.get("HTTP_X_AMZ_TARGET")
                if target:
                    self.requests_by_operation[target] = self.requests_by_operation.get(target, 0) + 1
        target = environ.get("HTTP_X_AMZ_TARGET", "")
        if not target.startswith(DYNAMODB_TARGET):
            return self.app(environ, start_response)
        operation = target[len(DYNAMODB_TARGET) :]
        with self.lock:
            self.dynamodb_requests += 1
            if self.count_write_units and operation in WRITE_OPERATIONS:
                length = int(environ.get("CONTENT_LENGTH") or 0)
                body = environ["wsgi.input"].read(length) if length else b""
                environ["wsgi.input"] = io.BytesIO(body)
                return self.write_units.measure(  # type: ignore[no-any-return]
                    environ, body, lambda: self._serve(operation, environ, start_response)
                )
            return self._serve(operation, environ, start_response)

    def _serve(self, operation: str, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        """One DynamoDB request, the lock held: a write is journalled (when a journal is attached)."""
        if self.journal is None or operation not in WRITE_OPERATIONS:
            return [b"".join(self.app(environ, start_response))]
        return self._journalled(operation, environ, start_response)

    def _journalled(
        self, operation: str, environ: dict[str, Any], start_response: Callable[..., Any]
    ) -> Iterable[bytes]:
        """Run a write holding the lock, journal what it touched, then answer. An answer that could not
        be journalled is a 500 (the client retries; replaying after-images is idempotent)."""
        assert self.journal is not None
        length = int(environ.get("CONTENT_LENGTH") or 0)
        raw = environ["wsgi.input"].read(length) if length else environ["wsgi.input"].read()
        environ["wsgi.input"] = io.BytesIO(raw)
        environ["CONTENT_LENGTH"] = str(len(raw))
        answer: list[Any] = []

        def keep(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Callable[[bytes], Any]:
            answer[:] = [status, headers]
            return lambda data: None

        body = b"".join(self.app(environ, keep))
        status, headers = answer
        if status[:1] != "4":  # a refused write (a condition, a validation) changed nothing
            try:
                self.journal.record(operation, json.loads(raw), self.lock)
            except Exception:
                log.exception("the write could not be journalled")
                error = json.dumps(
                    {
                        "__type": "com.amazonaws.dynamodb.v20120810#InternalServerError",
                        "message": "the local cloud could not journal this write",
                    }
                ).encode()
                start_response(
                    "500 Internal Server Error",
                    [("Content-Type", "application/x-amz-json-1.0"), ("Content-Length", str(len(error)))],
                )
                return [error]
        start_response(status, headers)
        return [body]


class MotoServer:
    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self.host = host
        self.port = port
        self.app = SerialisedDynamoDB(DomainDispatcherApplication(create_backend_app))
        self._server: BaseWSGIServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def endpoint(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self) -> MotoServer:
        try:
            self._server = make_server(
                self.host, self.port, self.app, threaded=True, request_handler=MotoRequestHandler
            )
        except OSError as e:
            raise SystemExit(
                f"cannot start the AWS emulator on {self.host}:{self.port}: {e.strerror} "
                "(set PLATFORM_AWS_PORT to another port)"
            ) from e
        self.port = int(self._server.server_address[1])
        self._thread = threading.Thread(target=self._server.serve_forever, name="moto", daemon=True)
        self._thread.start()
        # A new local cloud starts from an empty AWS, as a new moto server process would (moto's state
        # lives in this process, shared by every server in it).
        requests.post(f"{self.endpoint}/moto-api/reset", timeout=5).raise_for_status()
        # Step Functions executions run; Lambda tasks run without Docker (our router handles them).
        requests.post(
            f"{self.endpoint}/moto-api/config",
            json={"stepfunctions": {"execute_state_machine": True}, "lambda": {"use_docker": False}},
            timeout=5,
        ).raise_for_status()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def client(self, service: str, region: str = "us-east-1") -> Any:
        return boto3.client(
            service,
            endpoint_url=self.endpoint,
            region_name=region,
            aws_access_key_id="local",
            aws_secret_access_key="local",  # noqa: S106 (moto accepts any credential)
        )


def create_table(ddb: Any, table_name: str, table: Mapping[str, Any] | None = None) -> None:
    """Create the DynamoDB table as infra/resources.json declares it (``table``: the declaration's
    ``table`` section; by default the one of infra/resources.json), its stream and its TTL on: for the
    local cloud and for the tests' and benchmarks' tables alike."""
    t = table if table is not None else Declaration.load().data["table"]
    ddb.create_table(
        TableName=table_name,
        AttributeDefinitions=[{"AttributeName": a, "AttributeType": "S"} for a in t["attributes"]],
        KeySchema=[
            {"AttributeName": t["hash_key"], "KeyType": "HASH"},
            {"AttributeName": t["range_key"], "KeyType": "RANGE"},
        ],
        GlobalSecondaryIndexes=[
            {
                "IndexName": g["name"],
                "KeySchema": [
                    {"AttributeName": g["hash_key"], "KeyType": "HASH"},
                    {"AttributeName": g["range_key"], "KeyType": "RANGE"},
                ],
                "Projection": {"ProjectionType": g["projection"]},
            }
            for g in t["global_secondary_indexes"]
        ],
        BillingMode=t["billing_mode"],
        StreamSpecification={"StreamEnabled": True, "StreamViewType": t["stream_view_type"]},
    )
    ddb.update_time_to_live(
        TableName=table_name, TimeToLiveSpecification={"Enabled": True, "AttributeName": t["ttl_attribute"]}
    )


def create_resources(server: MotoServer, decl: Declaration) -> dict[str, Any]:
    """Create everything the declaration lists; answer the names and URLs made."""
    region = decl.region
    made: dict[str, Any] = {"queues": {}, "state_machines": {}, "buckets": {}}

    create_table(server.client("dynamodb", region), decl.table_name, decl.data["table"])

    events = server.client("events", region)
    bus_arn = events.create_event_bus(Name=decl.bus_name)["EventBusArn"]

    sqs = server.client("sqs", region)
    for q in decl.list("queues"):
        dlq_url = sqs.create_queue(
            QueueName=decl.dlq_name(q["name"]), Attributes={"MessageRetentionPeriod": "1209600"}
        )["QueueUrl"]
        dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        url = sqs.create_queue(
            QueueName=decl.name(q["name"]),
            Attributes={
                "VisibilityTimeout": str(q.get("visibility_timeout", 30)),
                **({"MaximumMessageSize": str(q["max_message_size"])} if "max_message_size" in q else {}),
                "RedrivePolicy": json.dumps(
                    {"deadLetterTargetArn": dlq_arn, "maxReceiveCount": str(q.get("max_receive_count", 5))}
                ),
            },
        )["QueueUrl"]
        arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        made["queues"][q["name"]] = {"url": url, "arn": arn, "dlq_url": dlq_url}

    s3 = server.client("s3", region)
    for b in decl.list("buckets"):
        name = decl.name(b["name"])
        s3.create_bucket(Bucket=name)
        if b.get("expire_days"):  # accepted and kept by moto, never applied: the consumer deletes what it read
            s3.put_bucket_lifecycle_configuration(
                Bucket=name,
                LifecycleConfiguration={
                    "Rules": [
                        {"ID": "expire", "Status": "Enabled", "Filter": {}, "Expiration": {"Days": b["expire_days"]}}
                    ]
                },
            )
        made["buckets"][b["name"]] = name

    for r in decl.list("rules"):
        name = decl.name(r["name"])
        events.put_rule(Name=name, EventBusName=decl.bus_name, EventPattern=json.dumps(r["event_pattern"]))
        events.put_targets(
            Rule=name,
            EventBusName=decl.bus_name,
            Targets=[{"Id": r["queue"], "Arn": made["queues"][r["queue"]]["arn"]}],
        )

    sfn = server.client("stepfunctions", region)
    for m in decl.list("state_machines"):
        arn = sfn.create_state_machine(
            name=decl.name(m["name"]),
            definition=decl.render_definition(m, server.endpoint),
            roleArn=f"arn:aws:iam::{ACCOUNT}:role/{decl.name('states')}",
            type="STANDARD",
        )["stateMachineArn"]
        made["state_machines"][m["name"]] = arn

    identity = (decl.data.get("ses_identity") or {}).get("email")
    if identity:
        server.client("sesv2", region).create_email_identity(EmailIdentity=identity)
        made["ses_identity"] = identity
    made["table"] = decl.table_name
    made["bus"] = {"name": decl.bus_name, "arn": bus_arn}
    return made
