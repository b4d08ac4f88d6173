"""DeployService over an in-memory DeployStore: what a user sees of a deployment, without the local
cloud (the functional tests cover the same flows through the whole platform)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from chalicelib.api.schemas.services import DeploymentOut
from chalicelib.api.services import deployment_view
from chalicelib.domain.services.deploys import Deployment

NOW = datetime(2024, 5, 2, 12, 0, tzinfo=UTC)
NS, SVC = "acme-backend", "hello"


# ------------------------------------------------------------------ what the API answers


@pytest.mark.parametrize(
    ("status", "finished"),
    [
        ("queued", False),
        ("in_progress", False),
        ("succeeded", True),
        ("failed", True),
        ("rolled_back", True),
        ("superseded", True),
    ],
)
def test_the_api_says_whether_a_deployment_is_finished(status: Any, finished: bool) -> None:
    dep = Deployment("01HX0000000000000000000001", NS, SVC, status, "/src", "main", NOW, {"kind": "api"})
    answered = DeploymentOut.model_validate(deployment_view(dep)).model_dump(mode="json")
    assert answered["status"] == status
    assert answered["finished"] is finished


def test_the_api_document_describes_finished_as_required() -> None:
    schema = DeploymentOut.model_json_schema()
    assert schema["properties"]["finished"]["type"] == "boolean"
    assert "finished" in schema["required"]
