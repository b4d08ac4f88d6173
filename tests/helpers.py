"""Test helpers shared by every tier."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from botocore.client import BaseClient

ROOT = Path(__file__).resolve().parent.parent


class ScanGuard:
    """Records every DynamoDB Scan the process issues; ``check()`` fails when there was one.

    No access pattern of the platform may Scan (docs/data-model.md); the suite's autouse fixture
    wraps every test in a guard, so a Scan anywhere in the code under test fails that test."""

    def __init__(self) -> None:
        self.scans: list[str] = []
        self._original: Any = None

    def __enter__(self) -> ScanGuard:
        self._original = original = BaseClient._make_api_call
        guard = self

        def _make_api_call(client: BaseClient, operation_name: str, api_params: dict[str, Any]) -> Any:
            if operation_name == "Scan" and client.meta.service_model.service_name == "dynamodb":
                guard.scans.append(str(api_params.get("TableName")))
            return original(client, operation_name, api_params)

        BaseClient._make_api_call = _make_api_call  # type: ignore[method-assign]
        return self

    def __exit__(self, *exc: object) -> None:
        BaseClient._make_api_call = self._original  # type: ignore[method-assign]

    def check(self) -> None:
        if self.scans:
            raise AssertionError(
                f"the code under test issued {len(self.scans)} DynamoDB Scan(s) on {sorted(set(self.scans))}: "
                "every access pattern must use Query or GetItem (docs/data-model.md)"
            )


def resources() -> dict[str, Any]:
    return json.loads((ROOT / "infra" / "resources.json").read_text())
