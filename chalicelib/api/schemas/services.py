from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import Field, model_validator

from chalicelib.api.schemas import ApiInput, ApiModel


class DeployIn(ApiInput):
    source: str = Field(
        min_length=1, max_length=1000, description="a git repository: a local path (stage local) or a git URL"
    )
    ref: str | None = Field(default=None, min_length=1, max_length=255, description="a branch, tag or HEAD")
    commit: str | None = Field(default=None, pattern=r"^[0-9a-fA-F]{7,40}$")

    @model_validator(mode="after")
    def one_of_ref_or_commit(self) -> DeployIn:
        if (self.ref is None) == (self.commit is None):
            raise ValueError("give either ref or commit")
        return self


class StepOut(ApiModel):
    name: str
    status: str
    started_at: datetime
    ended_at: datetime | None = None
    detail: str | None = None


class DeploymentOut(ApiModel):
    id: str
    service: str
    status: str = Field(description="queued, in_progress, succeeded, failed, rolled_back or superseded")
    finished: bool = Field(
        description="true once the status is terminal (succeeded, failed, rolled_back, superseded): the "
        "deployment changes no more; a client waits for this rather than for statuses it knows"
    )
    source: str
    ref: str
    commit: str | None = None
    reason: str | None = None
    trigger: dict[str, str]
    created_at: datetime
    deadline: datetime | None = None
    rollback_of: str | None = None
    steps: list[StepOut] = []
    logs: list[dict[str, Any]] | None = None


class DeploymentsOut(ApiModel):
    deployments: list[DeploymentOut]


class InstanceOut(ApiModel):
    version: str
    status: str
    address: str | None = None
    started_at: str | None = None


class ServiceOut(ApiModel):
    name: str
    status: str
    current_deployment_id: str | None = None
    current_commit: str | None = None
    auto_deploy: bool
    auto_deploy_paused: bool
    address: str | None = None
    instances: list[InstanceOut] = []


class ServicesOut(ApiModel):
    services: list[ServiceOut]


class RollbackIn(ApiInput):
    deployment_id: str | None = Field(default=None, pattern=r"^[0-9A-Z]{26}$")


class RollbackOut(ApiModel):
    deployment: DeploymentOut
    auto_deploy_paused: bool
    message: str


class AutoDeployIn(ApiInput):
    enabled: bool


class ConfigValueIn(ApiInput):
    value: str = Field(max_length=32768)
    secret: bool = False


class ConfigIn(ApiInput):
    vars: dict[str, ConfigValueIn] = Field(min_length=1, max_length=100)


class ConfigVarOut(ApiModel):
    key: str
    secret: bool
    value: str | None = Field(default=None, description="plain vars only: a secret's value is never shown")


class ConfigOut(ApiModel):
    vars: list[ConfigVarOut]
    redeploy: DeploymentOut | None = None


class LogLineOut(ApiModel):
    timestamp: datetime | None = Field(None, description="null when the runtime gives none (micro v3)")
    message: str
    version: str | None = None


class LogsOut(ApiModel):
    lines: list[LogLineOut]
    since_ignored: str | None = Field(
        None, description="why `since` was not applied: the runtime's records carry no time (micro v3)"
    )
