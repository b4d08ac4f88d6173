from __future__ import annotations

from datetime import datetime

from pydantic import Field

from chalicelib.api.schemas import ApiInput, ApiModel


class RepoLinkIn(ApiInput):
    repo: str = Field(pattern=r"^[A-Za-z0-9_.-]{1,100}/[A-Za-z0-9_.-]{1,100}$", description="owner/name")
    branch: str | None = Field(default=None, min_length=1, max_length=255, description="default: the default branch")
    auto_deploy: bool = True


class RepoPatchIn(ApiInput):
    branch: str | None = Field(default=None, min_length=1, max_length=255)
    auto_deploy: bool | None = None


class RepoLinkOut(ApiModel):
    id: int = Field(description="the GitHub repository id (what the link stores)")
    full_name: str
    installation_id: int
    branch: str
    auto_deploy: bool
    status: str
    disabled_reason: str | None = None
    created_at: datetime


class RepoLinksOut(ApiModel):
    repos: list[RepoLinkOut]
