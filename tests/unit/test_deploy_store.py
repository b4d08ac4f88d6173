"""The deploy store on DynamoDB (moto in-process): steps recorded one at a time, and a deployment stored
before that (its steps one JSON string) taken over by its first update with nothing lost."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from chalicelib.adapters.dynamodb.deploys import DeploymentItem, DynamoDeployStore
from chalicelib.domain.errors import ConflictError
from chalicelib.domain.services.deploys import Step

NS, SVC, DEP = "acme-backend", "hello", "01HX0000000000000000000001"
NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)


def old_shape(status: str) -> None:
    pk, sk = DeploymentItem.key(NS, SVC, DEP)
    DeploymentItem(
        PK=pk,
        SK=sk,
        ns=NS,
        service=SVC,
        deployment_id=DEP,
        status=status,
        source="https://github.com/acme/hello.git",
        ref="main",
        trigger=json.dumps({"kind": "api", "actor": "user:ada"}),
        steps=json.dumps(
            [{"name": "lock", "status": "waiting", "started_at": NOW.isoformat(), "ended_at": None, "detail": "q"}]
        ),
        created_at=NOW,
    ).save()


def test_a_deployment_stored_with_its_steps_as_one_string_is_taken_over_by_its_first_update(
    container: Any,
) -> None:
    old_shape("queued")
    store = DynamoDeployStore()
    later = NOW + timedelta(seconds=5)
    dep = store.add_step(NS, SVC, DEP, Step("lock", "succeeded", NOW, later), index=0)
    assert [(s.name, s.status, s.ended_at) for s in dep.steps] == [("lock", "succeeded", later)]
    dep = store.add_step(NS, SVC, DEP, Step("build", "started", later))
    assert [(s.name, s.status) for s in dep.steps] == [("lock", "succeeded"), ("build", "started")]
    item = DeploymentItem.get(*DeploymentItem.key(NS, SVC, DEP), consistent_read=True)
    assert item.steps is None and len(item.step_list or []) == 2
    assert store.get_deployment(NS, SVC, DEP) == dep


def test_a_step_is_refused_once_the_deployment_ended_in_either_shape(container: Any) -> None:
    old_shape("failed")
    with pytest.raises(ConflictError):
        DynamoDeployStore().add_step(NS, SVC, DEP, Step("build", "started", NOW))
    found = DynamoDeployStore().get_deployment(NS, SVC, DEP)
    assert found is not None and [s.name for s in found.steps] == ["lock"]  # nothing written
