"""The only module that changes moto's internals (moto is pinned to the version these were written
against: re-check both when upgrading it).

1. ``DynamoDBBackend.transact_write_items``: moto backs up the *whole table* with ``copy.deepcopy``
   once per item of every transaction, so each transaction costs time in proportion to the table
   (about 125 ms each at 400 items, measured). This version checks every condition against the state
   before the transaction, writes nothing when one fails, and backs up only the items it is about
   to write (to put them back if a write fails half-way). DynamoDB's semantics, at a cost that does
   not grow with the table. It relies on the local cloud serialising DynamoDB requests. A condition
   expression is parsed once per distinct (expression, names, values) in a transaction, not once per
   item: a chunk of usage events repeats one claim condition a hundred times (parsing is pure).

2. ``moto.dynamodb.responses.create_condition_expression_parser``: moto's request validation parses
   every condition expression of a request (then the backend parses it again), a hundred identical
   ones per transaction of usage claims. Parsing is pure, so a condition is parsed once per distinct
   (expression, names, values) and its parse reused (a bounded cache; a condition that fails to
   parse is not cached and fails as before).

3. ``LambdaSimpleBackend.invoke`` (moto's Lambda without Docker only echoes its input): routed to the
   local cloud's function router, so an invoke runs the project's handler in this process. A handler's
   exception sets ``x-amz-function-error`` and answers ``{"errorType", "errorMessage"}``, as Lambda does.

4. ``StepFunctionResponse.send_task_failure``: moto 5.2.5 reads ``taskToken`` and ``error`` and drops
   ``cause``, so a Catch sees ``"Cause": null``. Step Functions passes the cause on to the Catch's
   ``{"Error", "Cause"}`` (SendTaskFailure, AWS Step Functions API Reference); the interpreter's backend
   takes it (``parser/models.py`` ``send_task_failure(task_token, error, cause)``): it is handed on.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from typing import Any

import moto.dynamodb.responses as dynamodb_responses
from moto.awslambda_simple.models import LambdaSimpleBackend
from moto.core.responses import EmptyResult
from moto.dynamodb.comparisons import ConditionExpressionParser, get_filter_expression
from moto.dynamodb.exceptions import (
    ConditionalCheckFailed,
    MultipleTransactionsException,
    TooManyTransactionsException,
    TransactionCanceledException,
    TransactWriteSingleOpException,
)
from moto.dynamodb.models import DynamoDBBackend
from moto.stepfunctions.responses import StepFunctionResponse

_original_transact_write_items = DynamoDBBackend.transact_write_items
_original_condition_parser = getattr(dynamodb_responses, "create_condition_expression_parser")  # noqa: B009
_original_invoke = LambdaSimpleBackend.invoke
_original_send_task_failure = StepFunctionResponse.send_task_failure
Router = Callable[[str, Any], tuple[Any, "str | None"]]
_router: Router | None = None


def _key_of(backend: DynamoDBBackend, op_type: str, op: dict[str, Any]) -> dict[str, Any]:
    if op_type != "Put":
        return dict(op["Key"])
    table = backend.get_table(op["TableName"])
    key = {table.hash_key_attr: op["Item"][table.hash_key_attr]}
    if table.range_key_attr is not None:
        key[table.range_key_attr] = op["Item"][table.range_key_attr]
    return key


def transact_write_items(self: DynamoDBBackend, transact_items: list[dict[str, Any]]) -> None:
    if len(transact_items) > 100:
        raise TooManyTransactionsException()
    planned: list[tuple[str, dict[str, Any], dict[str, Any]]] = []
    seen: set[tuple[str, str]] = set()
    errors: list[Any] = []
    checks: dict[str, Any] = {}  # parsed conditions of this transaction
    for item in transact_items:
        if len(item) > 1:
            raise TransactWriteSingleOpException
        op_type, op = next(iter(item.items()))
        if op_type not in {"ConditionCheck", "Put", "Delete", "Update"}:
            raise ValueError("Unsupported transaction operation")
        key = _key_of(self, op_type, op)
        marker = (str(op["TableName"]), str(dict(sorted(key.items()))))
        if marker in seen:
            raise MultipleTransactionsException()
        seen.add(marker)
        current = self.get_item(op["TableName"], key)
        condition = op.get("ConditionExpression")
        if condition is not None:
            names, values = op.get("ExpressionAttributeNames"), op.get("ExpressionAttributeValues")
            parsed = json.dumps([condition, names, values], sort_keys=True)
            check = checks.get(parsed)
            if check is None:
                check = checks[parsed] = get_filter_expression(condition, names, values)
            if not check.expr(current):
                old = None
                if op.get("ReturnValuesOnConditionCheckFailure") == "ALL_OLD" and current:
                    old = current.to_json()["Attributes"]
                errors.append(("ConditionalCheckFailed", ConditionalCheckFailed().message, old))
                continue
        errors.append((None, None, None))
        planned.append((op_type, op, key))
    if any(code is not None for code, _, _ in errors):
        raise TransactionCanceledException(errors)

    backups = [
        (op["TableName"], key, copy.deepcopy(self.get_item(op["TableName"], key)))
        for op_type, op, key in planned
        if op_type != "ConditionCheck"
    ]
    try:
        for op_type, op, key in planned:
            names, values = op.get("ExpressionAttributeNames"), op.get("ExpressionAttributeValues")
            if op_type == "Put":
                self.put_item(op["TableName"], op["Item"])
            elif op_type == "Delete":
                self.delete_item(op["TableName"], key)
            elif op_type == "Update":
                self.update_item(
                    op["TableName"],
                    key,
                    update_expression=op["UpdateExpression"],
                    expression_attribute_names=names,
                    expression_attribute_values=values,
                    condition_expression=None,
                )
    except Exception:
        for table_name, key, old in backups:
            if old is None:
                _delete_quietly(self, table_name, key)
            else:
                self.put_item(table_name, old.to_json()["Attributes"])
        raise


def _delete_quietly(backend: DynamoDBBackend, table_name: str, key: dict[str, Any]) -> None:
    if backend.get_item(table_name, key) is not None:
        backend.delete_item(table_name, key)


class _ParsedCondition:
    """What moto's request validation reads of a condition parser, parsed once."""

    def __init__(self, parser: ConditionExpressionParser) -> None:
        self._op = parser.parse()
        self.expr_attr_names_found = list(parser.expr_attr_names_found)
        self.expr_attr_values_found = list(parser.expr_attr_values_found)

    def parse(self) -> Any:
        return self._op


_parsed_conditions: dict[str, _ParsedCondition] = {}


def create_condition_expression_parser(expr: Any, names: Any, values: Any) -> Any:
    key = json.dumps([expr, names, values], sort_keys=True)
    found = _parsed_conditions.get(key)
    if found is None:
        parser = ConditionExpressionParser(expr, names, values)
        try:
            found = _ParsedCondition(parser)
        except Exception:
            return ConditionExpressionParser(expr, names, values)  # fails again, as moto's would
        if len(_parsed_conditions) >= 4096:
            _parsed_conditions.clear()
        _parsed_conditions[key] = found
    return found


def invoke(
    self: LambdaSimpleBackend, function_name: str, qualifier: str | None, body: Any, headers: Any, response_headers: Any
) -> bytes:
    if _router is None:
        raise RuntimeError("no local cloud function router is installed")
    result, error = _router(function_name, json.loads(body) if body else {})
    if error:
        response_headers["x-amz-function-error"] = error
    return json.dumps(result).encode()


def send_task_failure(self: StepFunctionResponse) -> Any:
    backend: Any = self.stepfunction_backend
    backend.send_task_failure(
        self._get_param("taskToken"), error=self._get_param("error"), cause=self._get_param("cause")
    )
    return EmptyResult()


def install(router: Router) -> None:
    """Patch moto for the local cloud; ``router(function name or ARN, event)`` runs a function."""
    global _router
    _router = router
    DynamoDBBackend.transact_write_items = transact_write_items  # type: ignore[method-assign]
    setattr(dynamodb_responses, "create_condition_expression_parser", create_condition_expression_parser)  # noqa: B010
    LambdaSimpleBackend.invoke = invoke  # type: ignore[method-assign]
    StepFunctionResponse.send_task_failure = send_task_failure  # type: ignore[method-assign]


def uninstall() -> None:
    global _router
    _router = None
    DynamoDBBackend.transact_write_items = _original_transact_write_items  # type: ignore[method-assign]
    setattr(dynamodb_responses, "create_condition_expression_parser", _original_condition_parser)  # noqa: B010
    LambdaSimpleBackend.invoke = _original_invoke  # type: ignore[method-assign]
    StepFunctionResponse.send_task_failure = _original_send_task_failure  # type: ignore[method-assign]
