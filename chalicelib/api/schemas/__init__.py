"""Request and response models of the API (pydantic). Blueprints name them by string
("chalicelib.api.schemas.system:HealthOut") so that pydantic is imported on first use, not with the app."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class ApiModel(BaseModel):
    """Base of every request and response model: unknown fields are refused."""

    model_config = ConfigDict(extra="forbid")


class ApiInput(ApiModel):
    """Base of every request model: types taken as JSON states them (strict: ``0`` is not ``false``,
    ``"3"`` is not ``3``), as the OpenAPI document says."""

    model_config = ConfigDict(extra="forbid", strict=True)
