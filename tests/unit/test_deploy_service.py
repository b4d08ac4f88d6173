"""DeployService over an in-memory DeployStore: what a user sees of a deployment, without the local
cloud (the functional tests cover the same flows through the whole platform)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any

import pytest

from chalicelib.adapters.memory.deploys import InMemoryDeployStore
from chalicelib.adapters.memory.runtime import InMemoryRuntime
from chalicelib.api.errors import status_for
from chalicelib.api.schemas.services import DeploymentOut
from chalicelib.api.services import deployment_view
from chalicelib.domain.errors import ConflictError, PaymentRequiredError, PlatformError, ValidationError
from chalicelib.domain.manifest import ServiceManifest
from chalicelib.domain.model import Namespace
from chalicelib.domain.ports import Build, ResourceQuota, RuntimeService
from chalicelib.domain.services.deploys import Built, Deployment, DeployService, DeploySettings, Run

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


# ------------------------------------------------------------------ the service over an in-memory store

SHA = "c0ffee" + "0" * 34
CRASHED = "exit status 1"


class Builds:
    """A builder whose every build is the commit ``SHA`` with one service ``hello`` in its micro.yaml."""

    def __init__(self) -> None:
        self.built: dict[str, str] = {}

    def check_source(self, source: str) -> None:
        return None

    def prepare(
        self, namespace: str, service: str, deployment_id: str, source: str, ref: str, quota: Any, protect: Any = ()
    ) -> Build:
        self.built[deployment_id] = f"/artifacts/{namespace}/{service}/{deployment_id}"
        entry = ServiceManifest(name=SVC, path=".", command=("python3", "server.py"), port=8080, deadline_seconds=60)
        return Build(artifact=self.built[deployment_id], commit=SHA, manifest=(entry,))

    def kept(self, namespace: str, service: str, deployment_id: str) -> str | None:
        return self.built.get(deployment_id)


class Workflows:
    def __init__(self) -> None:
        self.started: list[str] = []

    def start(self, machine: str, name: str, payload: dict[str, Any]) -> str:
        if name in self.started:
            raise ConflictError(f"execution {name} exists", {})
        self.started.append(name)
        return name

    def status(self, machine: str, name: str) -> str | None:
        return None


class Reporter:
    def report(self, *args: Any) -> dict[str, str]:
        return {}

    def refused(self, *args: Any) -> None:
        return None

    def reports(self, refs: Any) -> bool:
        return False


class Encryptor:
    def encrypt(self, plaintext: str, context: dict[str, str]) -> str:
        return plaintext[::-1]

    def decrypt(self, ciphertext: str, context: dict[str, str]) -> str:
        return ciphertext[::-1]


class Runtime(InMemoryRuntime):
    """The in-memory runtime, where versions in ``crashing`` are seen crashed and those in ``slow`` still
    starting."""

    def __init__(self, clock: Any) -> None:
        super().__init__(clock)
        self.crashing: set[str] = set()
        self.slow: set[str] = set()

    def read_services(self, namespace: str, name: str | None = None) -> list[RuntimeService]:
        seen = []
        for s in super().read_services(namespace, name):
            if s.version in self.crashing:
                s = replace(s, status="error", metadata={**s.metadata, "error": CRASHED})
            elif s.version in self.slow:
                s = replace(s, status="starting")
            seen.append(s)
        return seen


@dataclass
class Platform:
    service: DeployService
    store: InMemoryDeployStore
    runtime: Runtime
    workflows: Workflows
    clock: Any
    refusal: list[Exception]

    def deploy(self, ref: str = "main", source: str = "https://github.com/acme/hello.git") -> str:
        return self.service.request(NS, SVC, source, ref, {"kind": "api", "actor": "user:ada"}).id

    def execute(self, dep_id: str) -> str:
        """What the deploy state machine does (statemachines/deploy.asl.json), task by task."""
        locked = self.service.step_lock(NS, SVC, dep_id)
        if not locked["locked"]:
            return str(locked["status"])
        run = Run.from_state(locked["run"])
        try:
            built = Built.from_state(self.service.step_build(NS, SVC, dep_id, run))
            self.service.step_start(NS, SVC, dep_id, run, built)
            health = self.service.step_health(NS, SVC, dep_id, run, built, first=True)
            for _ in range(100):  # the Wait loop (ten seconds a turn), which the deadline ends
                if health["health"] != "starting":
                    break
                self.clock.advance(10)
                health = self.service.step_health(NS, SVC, dep_id, run, built)
            assert health["health"] != "starting", "the Wait loop never ended"
        except PlatformError as e:
            error = {"Error": type(e).__name__, "Cause": e.message}
            finished = self.service.step_rollback(NS, SVC, dep_id, error, run)
        else:
            if health["health"] == "running":
                at = datetime.fromisoformat(health["at"])
                finished = self.service.step_succeed(NS, SVC, dep_id, run, built, at)
            else:
                error = {"Error": "Unhealthy", "Cause": health["health"]}
                finished = self.service.step_rollback(NS, SVC, dep_id, error, run)
        self.service.step_release(NS, SVC, dep_id, released=bool(finished.get("released")))
        return self.service.deployment(NS, SVC, dep_id).status

    def running(self) -> list[str]:
        return [s.version for s in self.runtime.read_services(NS, SVC)]


@pytest.fixture
def platform(clock: Any) -> Platform:
    namespace = Namespace(NS, "acme", 1, "backend", 2, "eu-west-1", "starter", "active", NOW, "ada", cluster_id="c1")
    store = InMemoryDeployStore({NS: namespace})
    runtime = Runtime(clock)
    runtime.create_namespace(NS)  # onboarded
    workflows = Workflows()
    refusal: list[Exception] = []

    def admit(ns: str) -> None:
        if refusal:
            raise refusal[0]

    service = DeployService(
        store,
        Builds(),
        lambda ns: runtime,
        workflows,
        Reporter(),
        Encryptor(),
        lambda plan: ResourceQuota(memory_mib=1024, cpu_millicores=1000, ephemeral_storage_mib=2048),
        clock,
        DeploySettings(health_backoff=()),
        admit,
        sleep=lambda seconds: None,
    )
    return Platform(service, store, runtime, workflows, clock, refusal)


def test_a_deployment_runs_its_steps_and_its_version_becomes_current(platform: Platform) -> None:
    dep_id = platform.deploy()
    assert platform.service.deployment(NS, SVC, dep_id).status == "queued"
    assert platform.workflows.started == [dep_id]  # its execution started with it

    assert platform.execute(dep_id) == "succeeded"
    dep = platform.service.deployment(NS, SVC, dep_id)
    assert dep.finished and dep.commit == SHA
    assert [s.name for s in dep.steps] == ["lock", "build", "start", "health"]
    assert all(s.status == "succeeded" and s.ended_at is not None for s in dep.steps), dep.steps
    service = platform.service.service(NS, SVC)
    assert (service.current_deployment_id, service.current_commit, service.status) == (dep_id, SHA, "running")
    assert platform.running() == [dep_id]
    assert [e.type for e in platform.store.events] == [
        "deployment.requested",
        "deployment.started",
        "deployment.succeeded",
    ]
    assert platform.store.lock_holder(NS, SVC, platform.clock.now()) is None  # the lock was released


def test_a_deployment_waits_behind_the_lock_and_a_newer_one_supersedes_it(platform: Platform) -> None:
    first = platform.deploy()
    assert platform.service.step_lock(NS, SVC, first)["locked"] is True
    platform.clock.advance(1)
    second = platform.deploy("feature")
    assert platform.service.step_lock(NS, SVC, second) == {"locked": False, "status": "queued"}
    waiting = platform.service.deployment(NS, SVC, second)
    assert waiting.status == "queued" and waiting.steps[-1].status == "waiting"
    assert waiting.steps[-1].detail == f"queued behind {first}"

    platform.clock.advance(1)
    third = platform.deploy("feature")
    assert platform.service.step_lock(NS, SVC, third)["status"] == "queued"
    superseded = platform.service.deployment(NS, SVC, second)
    assert superseded.status == "superseded" and superseded.finished
    assert superseded.reason == f"superseded by {third}"
    assert all(s.ended_at is not None for s in superseded.steps)  # its waiting step ended with it

    # the first one ends: its release starts the one queued (the newest), never the superseded one
    platform.service.step_release(NS, SVC, first)
    assert platform.workflows.started[-1] == third + "-run"
    assert platform.execute(third) == "succeeded"
    assert platform.execute(second) == "superseded"  # a late execution of it changes nothing


def test_an_unhealthy_version_is_rolled_back_to_the_previous_good_one(platform: Platform) -> None:
    good = platform.deploy()
    assert platform.execute(good) == "succeeded"
    platform.clock.advance(60)
    bad = platform.deploy("broken")
    platform.runtime.crashing.add(bad)

    assert platform.execute(bad) == "rolled_back"
    dep = platform.service.deployment(NS, SVC, bad)
    assert dep.finished and dep.reason is not None and CRASHED in dep.reason
    assert [s.name for s in dep.steps][-1] == "rollback" and dep.steps[-1].detail == f"back to {good}"
    assert all(s.ended_at is not None for s in dep.steps)
    assert platform.running() == [good]  # the previous version kept answering; the bad one is gone
    assert platform.service.service(NS, SVC).current_deployment_id == good
    types = [e.type for e in platform.store.events]
    assert types[-2:] == ["deployment.failed", "deployment.rolled_back"]


def test_a_version_not_healthy_by_its_deadline_fails(platform: Platform) -> None:
    dep_id = platform.deploy()
    platform.runtime.slow.add(dep_id)  # never healthy

    assert platform.execute(dep_id) == "failed"  # nothing earlier to roll back to
    dep = platform.service.deployment(NS, SVC, dep_id)
    assert dep.reason == "not healthy before the deadline"
    health = [s for s in dep.steps if s.name == "health"]
    assert health and health[-1].status == "failed"
    assert platform.running() == []  # its version was stopped
    assert platform.service.service(NS, SVC).status == "failed"  # it never ran a good version


def test_a_budget_hard_cap_refuses_a_deploy_with_402_and_records_nothing(platform: Platform) -> None:
    platform.refusal.append(PaymentRequiredError("the budget's hard cap suspends deploys", {"budget": "hard"}))
    with pytest.raises(PaymentRequiredError) as refused:
        platform.deploy()
    assert status_for(refused.value) == 402
    assert platform.store.deployments == {} and platform.store.services == {}
    assert platform.workflows.started == [] and platform.store.events == []


def test_a_source_carrying_credentials_is_refused_and_never_stored(platform: Platform) -> None:
    source = "https://x-access-token:ghs_16C7e42F292c6912E7710c838347Ae178B4a@github.com/acme/hello.git"
    with pytest.raises(ValidationError) as refused:
        platform.deploy(source=source)
    assert refused.value.details["fields"][0]["field"] == "source"
    assert "ghs_" not in refused.value.message
    assert platform.store.deployments == {} and platform.workflows.started == []


# ------------------------------------------------------------------ the Deployments metric, once a deployment


def deployments_counted(out: str) -> list[tuple[str, list[float]]]:
    """The ``Deployments`` EMF lines written (chalicelib/metrics.py): (outcome, count) each."""
    lines = [json.loads(line) for line in out.splitlines() if line.startswith("{") and '"_aws"' in line]
    return [(m["outcome"], m["Deployments"]) for m in lines if "Deployments" in m]


@pytest.fixture
def tasks(platform: Platform) -> Iterator[Any]:
    """The deploy state machine's task handlers (functions/deploy/handler.py) over this service."""
    from chalicelib.composition import set_container
    from functions.deploy import handler

    set_container(SimpleNamespace(deploys=platform.service))  # type: ignore[arg-type]
    yield handler
    set_container(None)


def until_healthy(platform: Platform, tasks: Any, dep_id: str) -> dict[str, Any]:
    """The state of the execution when it reaches Succeed (or Rollback): what Lock and Build answered."""
    state: dict[str, Any] = {"namespace": NS, "service": SVC, "deployment_id": dep_id}
    state["lock"] = tasks.lock(state, None)
    state["build"] = tasks.build(state, None)
    tasks.start(state, None)
    state["health"] = tasks.health(state, None)
    return state


def test_a_retried_succeed_task_counts_the_deployment_once(
    platform: Platform, tasks: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    state = until_healthy(platform, tasks, platform.deploy())
    capsys.readouterr()
    tasks.succeed(state, None)
    tasks.succeed(state, None)  # Step Functions retried it (its first answer was lost)
    assert deployments_counted(capsys.readouterr().out) == [("succeeded", [1.0])]
    assert platform.service.deployment(NS, SVC, state["deployment_id"]).status == "succeeded"


def test_a_retried_rollback_task_counts_the_deployment_once(
    platform: Platform, tasks: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    dep_id = platform.deploy()
    platform.runtime.crashing.add(dep_id)
    state = until_healthy(platform, tasks, dep_id)
    assert state["health"] == {"health": "error"}
    capsys.readouterr()
    state["error"] = {"Error": "Unhealthy", "Cause": "error"}
    tasks.rollback(state, None)
    tasks.rollback(state, None)
    assert deployments_counted(capsys.readouterr().out) == [("failed", [1.0])]


def test_a_retried_lock_task_counts_a_superseded_deployment_once(
    platform: Platform, tasks: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    older = platform.deploy()
    platform.clock.advance(1)
    newer = platform.deploy()
    platform.service.step_lock(NS, SVC, newer)  # the newer one runs
    capsys.readouterr()
    state = {"namespace": NS, "service": SVC, "deployment_id": older}
    assert tasks.lock(state, None)["status"] == "superseded"
    assert tasks.lock(state, None)["status"] == "superseded"
    assert deployments_counted(capsys.readouterr().out) == [("superseded", [1.0])]
