from __future__ import annotations

from typing import Any

from pydantic import Field

from chalicelib.api.schemas import ApiModel


class HealthOut(ApiModel):
    status: str = Field(description="`ok` when every check passes")
    version: str
    checks: dict[str, dict[str, Any]]
