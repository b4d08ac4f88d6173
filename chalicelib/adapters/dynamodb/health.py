"""Health check of the table: one strongly consistent GetItem of a key that never exists."""

from __future__ import annotations

import time
from typing import Any

from pynamodb.exceptions import PynamoDBException

from chalicelib.adapters.dynamodb.base import BaseItem, response_code
from chalicelib.domain.errors import DependencyUnavailableError


class TableHealthCheck:
    name = "table"

    def check(self) -> dict[str, Any]:
        started = time.monotonic()
        try:
            BaseItem.get("HEALTH", "HEALTH", consistent_read=True)
        except BaseItem.DoesNotExist:
            pass
        except PynamoDBException as e:
            raise DependencyUnavailableError(
                f"the table {BaseItem.Meta.table_name} does not answer",
                {"error": response_code(e) or type(e.cause).__name__},
            ) from e
        return {"latency_ms": round((time.monotonic() - started) * 1000, 1)}
