"""Regions on the table (moto in-process): placement by the plan's quota on the cluster with the most
free room, atomically; the health check's transitions as a ManualClock moves (unhealthy after
consecutive failures, once per interval, with its event; recovered); the steps of the region state
machine (plan recorded, approval through the kept token, registration, failure with the log excerpt,
retry) and the delete refused while namespaces live there."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest

from chalicelib.domain.errors import (
    ConflictError,
    DependencyUnavailableError,
    NoCapacityError,
    NotFoundError,
    ValidationError,
)
from chalicelib.domain.model import Principal
from chalicelib.domain.ports import Capacity, Cluster, PlanSummary, Region, ResourceQuota
from chalicelib.domain.services.regions import ClusterUnreachableError, HealthSettings, RegionService, error_of

STARTER = ResourceQuota(memory_mib=1024, cpu_millicores=1000, ephemeral_storage_mib=2048)
TEAM = ResourceQuota(memory_mib=4096, cpu_millicores=4000, ephemeral_storage_mib=8192)
OPS = Principal(uid=9, login="ops", scopes=frozenset({"read", "admin"}), platform_admin=True)


class Workflows:
    def __init__(self) -> None:
        self.started: list[tuple[str, str, dict[str, Any]]] = []

    def start(self, machine: str, name: str, payload: dict[str, Any]) -> str:
        if any(n == name for _, n, _ in self.started):
            raise ConflictError("exists", {})
        self.started.append((machine, name, payload))
        return name

    def status(self, machine: str, name: str) -> str | None:
        return None


class Tokens:
    def __init__(self) -> None:
        self.succeeded: list[tuple[str, dict[str, Any]]] = []
        self.expired: set[str] = set()

    def succeed(self, token: str, output: dict[str, Any]) -> None:
        if token in self.expired:
            raise NotFoundError("over", {})
        self.succeeded.append((token, output))

    def fail(self, token: str, error: str, cause: str) -> None:
        raise AssertionError("not used")


class Probe:
    def __init__(self) -> None:
        self.down: set[str] = set()
        self.probed: list[str] = []

    def probe(self, cluster: Cluster) -> None:
        self.probed.append(cluster.id)
        if cluster.api in self.down:
            raise DependencyUnavailableError(f"{cluster.api} refused the connection", {})


class Namespaces:
    def __init__(self) -> None:
        self.placed: dict[str, list[str]] = {}

    def on_cluster(self, cluster_id: str) -> list[str]:
        return list(self.placed.get(cluster_id, []))


@pytest.fixture
def world(container: Any, clock: Any) -> dict[str, Any]:
    workflows, tokens, probe, namespaces = Workflows(), Tokens(), Probe(), Namespaces()
    offboarded: list[str] = []
    service = RegionService(
        container.regions,
        clock,
        namespaces=namespaces,  # type: ignore[arg-type]
        workflows=workflows,
        tokens=tokens,
        probe=probe,
        offboard=lambda ns, actor: offboarded.append(ns),
        health=HealthSettings(failures=3, interval=timedelta(minutes=1)),
    )
    return {
        "service": service,
        "registry": container.regions,
        "placement": container.stores.placement,
        "workflows": workflows,
        "tokens": tokens,
        "probe": probe,
        "namespaces": namespaces,
        "offboarded": offboarded,
        "outbox": container.outbox,
        "clock": clock,
    }


def region_with(world: dict[str, Any], name: str, *rooms: tuple[int, int], status: str = "active") -> None:
    clusters = tuple(
        Cluster(
            f"{name}-{i}",
            name,
            "aws",
            f"{name}-{i}.proxy:8081",
            status,  # type: ignore[arg-type]
            cpu // 1000,
            api_address=f"http://{name}-{i}.api:8080",
            room=Capacity(cpu, memory),
        )
        for i, (cpu, memory) in enumerate(rooms, start=1)
    )
    world["registry"].seed(Region(name, "aws", name, "active", clusters))


def events(world: dict[str, Any], kind: str) -> list[dict[str, Any]]:
    return [e.data for e in world["outbox"].pending(100) if e.type == kind]


# --------------------------------------------------------------------------- placement


def test_placement_takes_the_cluster_with_the_most_free_room_and_counts_the_plan_s_quota(world: dict[str, Any]) -> None:
    placement = world["placement"]
    region_with(world, "eu", (4000, 4096), (10000, 10240))
    assert placement.take_capacity("eu", TEAM) == "eu-2"  # 10 free beats 4
    assert placement.take_capacity("eu", STARTER) == "eu-2"  # 6 free beats 4
    clusters = {c.id: c for c in world["registry"].get("eu").clusters}
    assert clusters["eu-2"].taken == Capacity(5000, 5120) and clusters["eu-2"].used == 2
    assert placement.take_capacity("eu", TEAM) == "eu-2"  # 5 free beats 4
    assert placement.take_capacity("eu", TEAM) == "eu-1"  # eu-2 has 1 left: a team namespace needs 4
    with pytest.raises(NoCapacityError) as refused:
        placement.take_capacity("eu", TEAM)
    assert refused.value.details == {"region": "eu", "cpu_millicores": 4000, "memory_mib": 4096}
    placement.release_capacity("eu", "eu-1", TEAM)
    assert {c.id: c.taken for c in world["registry"].get("eu").clusters}["eu-1"] == Capacity(0, 0)
    assert placement.take_capacity("eu", TEAM) == "eu-1"


def test_a_placement_that_lost_the_race_for_the_last_room_tries_the_next_cluster(
    world: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The update's condition, not the read, decides: a cluster filled between the read and the write
    refuses it (``cpu_used <= capacity - quota``), and the next one is taken."""
    from chalicelib.adapters.dynamodb.regions import ClusterItem

    region_with(world, "eu", (1000, 1024), (2000, 2048))
    placement = world["placement"]
    stale = list(ClusterItem.query("REGION#eu", ClusterItem.SK.startswith("CLUSTER#"), consistent_read=True))
    assert placement.take_capacity("eu", ResourceQuota(2048, 2000, 0)) == "eu-2"  # someone else fills eu-2
    monkeypatch.setattr(ClusterItem, "query", lambda *a, **k: iter(stale))  # this one read it empty
    assert placement.take_capacity("eu", STARTER) == "eu-1"
    with pytest.raises(NoCapacityError):
        placement.take_capacity("eu", STARTER)
    assert {c.id: c.taken for c in world["registry"].get("eu").clusters} == {
        "eu-1": Capacity(1000, 1024),
        "eu-2": Capacity(2000, 2048),
    }


def test_unhealthy_and_draining_clusters_take_no_namespace(world: dict[str, Any]) -> None:
    region_with(world, "sick", (8000, 8192), status="unhealthy")
    with pytest.raises(NoCapacityError):
        world["placement"].take_capacity("sick", STARTER)


def test_a_cluster_registered_by_namespace_count_is_read_as_that_many_smallest_plans(world: dict[str, Any]) -> None:
    world["registry"].seed(
        Region("old", "local", "old", "active", (Cluster("old-1", "old", "local", "x", "active", 2),))
    )
    assert world["placement"].take_capacity("old", STARTER) == "old-1"
    [c] = world["registry"].get("old").clusters
    assert c.total == Capacity(2000, 2048) and c.taken == Capacity(1000, 1024)
    with pytest.raises(NoCapacityError):
        world["placement"].take_capacity("old", TEAM)


# --------------------------------------------------------------------------- health


def test_a_cluster_is_unhealthy_after_consecutive_failed_checks_and_recovers(world: dict[str, Any]) -> None:
    service, probe, clock = world["service"], world["probe"], world["clock"]
    region_with(world, "eu", (8000, 8192))
    assert service.check_health() == {}  # healthy: nothing to say
    probe.down.add("http://eu-1.api:8080")
    first_failure = clock.now() + timedelta(minutes=1)
    for _ in range(2):
        clock.advance(timedelta(minutes=1))
        assert service.check_health() == {"failing": ["eu-1"]}
        assert world["registry"].get("eu").clusters[0].status == "active"  # one or two failures: still placed
    clock.advance(timedelta(seconds=20))
    assert service.check_health() == {"skipped": ["eu-1"]}  # sooner than half an interval: not counted
    clock.advance(timedelta(seconds=40))
    assert service.check_health() == {"unhealthy": ["eu-1"]}
    [c] = world["registry"].get("eu").clusters
    assert c.status == "unhealthy" and c.health_failures == 3 and c.unhealthy_since == first_failure
    assert c.last_check_error == "http://eu-1.api:8080 refused the connection"
    [event] = events(world, "region.unhealthy")
    assert event == {
        "region": "eu",
        "cluster_id": "eu-1",
        "check": "runtime_api",
        "reason": "http://eu-1.api:8080 refused the connection",
        "failures": 3,
        "since": first_failure.isoformat(),
    }
    with pytest.raises(NoCapacityError):
        world["placement"].take_capacity("eu", STARTER)
    clock.advance(timedelta(minutes=1))
    assert service.check_health() == {"failing": ["eu-1"]}  # still down: no second event
    assert len(events(world, "region.unhealthy")) == 1

    probe.down.clear()
    clock.advance(timedelta(minutes=1))
    assert service.check_health() == {"recovered": ["eu-1"]}
    [c] = world["registry"].get("eu").clusters
    assert c.status == "active" and c.health_failures == 0 and c.unhealthy_since is None
    [recovered] = events(world, "region.recovered")
    assert recovered == {
        "region": "eu",
        "cluster_id": "eu-1",
        "unhealthy_since": first_failure.isoformat(),
        "down_seconds": 240,
    }
    assert world["placement"].take_capacity("eu", STARTER) == "eu-1"


def test_one_failure_between_successes_never_makes_a_cluster_unhealthy(world: dict[str, Any]) -> None:
    service, probe, clock = world["service"], world["probe"], world["clock"]
    region_with(world, "eu", (8000, 8192))
    for down in (True, True, False, True, True, False):
        (probe.down.add if down else probe.down.discard)("http://eu-1.api:8080")
        clock.advance(timedelta(minutes=1))
        service.check_health()
    assert world["registry"].get("eu").clusters[0].status == "active"
    assert events(world, "region.unhealthy") == []


def test_a_check_that_lost_a_race_changes_nothing(world: dict[str, Any]) -> None:
    region_with(world, "eu", (8000, 8192))
    [read] = world["registry"].get("eu").clusters
    now = world["clock"].now()
    assert world["registry"].record_check(read, now=now, error="down")
    assert not world["registry"].record_check(read, now=now, error="down")  # as read: 0 failures, now 1
    assert world["registry"].get("eu").clusters[0].health_failures == 1


# --------------------------------------------------------------------------- the state machine's steps


def created(world: dict[str, Any], name: str = "eu-west", approval: bool = False) -> Region:
    region: Region = world["service"].create(OPS, name, "aws", "eu-west-1", "small", approval)
    return region


def test_create_validates_and_starts_the_state_machine(world: dict[str, Any]) -> None:
    with pytest.raises(ValidationError) as bad:
        world["service"].create(OPS, "Bad_Name", "mars", "Eu West", "huge", False)
    assert {f["field"] for f in bad.value.details["fields"]} == {"name", "cloud", "region", "size"}
    with pytest.raises(ValidationError) as nowhere:  # the API's default region is the local cloud's
        world["service"].create(OPS, "eu-west", "aws", "local", "small", False)
    assert nowhere.value.details["fields"] == [
        {"field": "region", "message": "the aws region to create the cluster in (not local)"}
    ]
    with pytest.raises(ValidationError):
        world["service"].create(OPS, "eu-west", "local", "eu-west-1", "small", False)
    assert world["workflows"].started == []  # nothing half-written: no execution
    region = created(world)
    assert (region.status, region.attempt, region.action, region.managed) == ("planning", 1, "create", True)
    assert world["workflows"].started == [
        (
            "regions",
            "eu-west-create-1",
            {
                "action": "create",
                "region": "eu-west",
                "attempt": 1,
                "poll_seconds": 5,
                "force": False,
                "actor": "user:ops",
            },
        )
    ]
    with pytest.raises(ConflictError):
        created(world)
    with pytest.raises(ConflictError):
        world["service"].create(OPS, "local", "local", "local", "small", False)


def test_the_approval_uses_the_kept_token_once(world: dict[str, Any]) -> None:
    service = world["service"]
    created(world, approval=True)
    with pytest.raises(ConflictError):
        service.approve("eu-west", OPS)  # nothing waits yet
    assert service.step_planned("eu-west", {"summary": {"add": 42, "change": 0, "destroy": 0}}) == {"approval": True}
    assert service.get("eu-west").status == "planning"  # until its token is kept
    service.step_await_approval("eu-west", "token-1")
    waiting = service.get("eu-west")
    assert waiting.status == "awaiting_approval" and waiting.plan_summary == PlanSummary(42, 0, 0)
    assert service.approve("eu-west", OPS).status == "applying"
    assert world["tokens"].succeeded == [("token-1", {"approved_by": "user:ops"})]
    with pytest.raises(ConflictError):
        service.approve("eu-west", OPS)


def test_an_approval_too_late_fails_the_region_saying_so(world: dict[str, Any]) -> None:
    service = world["service"]
    created(world, approval=True)
    service.step_planned("eu-west", {"summary": {"add": 1, "change": 0, "destroy": 0}})
    service.step_await_approval("eu-west", "token-old")
    world["tokens"].expired.add("token-old")
    with pytest.raises(ConflictError):
        service.approve("eu-west", OPS)
    failed = service.get("eu-west")
    assert failed.status == "failed" and failed.failure_step == "AwaitApproval"


def test_registration_needs_the_four_outputs_and_activation_emits_region_created(world: dict[str, Any]) -> None:
    service = world["service"]
    created(world)
    service.step_planned("eu-west", {"summary": {"add": 30, "change": 0, "destroy": 0}})
    with pytest.raises(ValidationError) as missing:
        service.step_register("eu-west", {"api_address": "https://api.eu.example"})
    assert missing.value.details["missing"] == ["proxy_address", "credentials_secret", "capacity"]
    outputs = {
        "api_address": "https://api.eu.example",
        "proxy_address": "proxy.eu.example:443",
        "credentials_secret": "aws-secretsmanager:arn:aws:secretsmanager:eu-west-1:1:secret:maas/eu-west",
        "capacity": {"cpu_millicores": 12000, "memory_mib": 24576},
    }
    assert service.step_register("eu-west", outputs)["cluster_id"] == "eu-west-1"
    world["probe"].down.add("https://api.eu.example")
    with pytest.raises(ClusterUnreachableError):
        service.step_health("eu-west")
    world["probe"].down.clear()
    service.step_health("eu-west")
    service.step_activate("eu-west", "user:ops")
    region = service.get("eu-west")
    [cluster] = region.clusters
    assert region.status == "active" and cluster.status == "active" and cluster.total == Capacity(12000, 24576)
    assert cluster.credentials_secret == outputs["credentials_secret"]
    [event] = events(world, "region.created")
    assert event["capacity"] == {"cpu_millicores": 12000, "memory_mib": 24576} and event["actor"] == "user:ops"


def test_a_failed_step_keeps_the_reason_and_the_log_excerpt_and_a_retry_starts_again(world: dict[str, Any]) -> None:
    service = world["service"]
    created(world)
    cause = json.dumps(
        {
            "reason": "terraform apply: Error: creating EKS Cluster: AccessDenied",
            "log_excerpt": "line 1\nError: AccessDenied",
        }
    )
    service.step_fail("eu-west", "Apply", {"Error": "TerraformFailedError", "Cause": cause})
    failed = service.get("eu-west")
    assert failed.status == "failed" and failed.failure_step == "Apply"
    assert failed.failure_reason == "TerraformFailedError: terraform apply: Error: creating EKS Cluster: AccessDenied"
    assert failed.log_excerpt == "line 1\nError: AccessDenied"
    [event] = events(world, "region.failed")
    assert event["step"] == "Apply" and event["action"] == "create"
    retried = service.retry("eu-west", OPS)
    assert (retried.status, retried.attempt) == ("planning", 2)
    assert world["workflows"].started[-1][1] == "eu-west-create-2"
    with pytest.raises(ConflictError):
        service.retry("eu-west", OPS)  # not failed any more


def test_error_of_reads_timeouts_and_lambda_errors_without_traces() -> None:
    assert error_of({"Error": "States.Timeout"})[0].startswith("States.Timeout: the step did not finish in time")
    lam = {"Error": "ValidationError", "Cause": json.dumps({"errorMessage": "bad outputs", "stackTrace": ["x"]})}
    assert error_of(lam) == ("ValidationError: bad outputs", None)


def test_the_delete_is_refused_while_namespaces_live_there_unless_forced(world: dict[str, Any]) -> None:
    service = world["service"]
    created(world)
    service.step_planned("eu-west", {"summary": {"add": 1, "change": 0, "destroy": 0}})
    service.step_register(
        "eu-west",
        {
            "api_address": "a",
            "proxy_address": "p",
            "credentials_secret": "s",
            "capacity": {"cpu_millicores": 1, "memory_mib": 1},
        },
    )
    service.step_activate("eu-west")
    world["namespaces"].placed["eu-west-1"] = ["acme-backend"]
    with pytest.raises(ConflictError) as refused:
        service.delete("eu-west", OPS)
    assert refused.value.details["namespaces"] == ["acme-backend"]
    assert service.get("eu-west").status == "active"  # nothing changed
    draining = service.delete("eu-west", OPS, force=True)
    assert draining.status == "draining" and draining.clusters[0].status == "draining"
    assert world["workflows"].started[-1][1:] == (
        "eu-west-delete-2",
        {"action": "delete", "region": "eu-west", "attempt": 2, "poll_seconds": 5, "force": True, "actor": "user:ops"},
    )
    assert service.step_drain("eu-west", True, "user:ops") == {"remaining": 1}
    assert world["offboarded"] == ["acme-backend"]
    world["namespaces"].placed.clear()
    assert service.step_drain("eu-west", True, "user:ops") == {"remaining": 0}
    service.step_destroying("eu-west")
    service.step_retire("eu-west", "user:ops")
    gone = service.get("eu-west")
    assert gone.status == "deleted" and gone.clusters == ()
    assert events(world, "region.deleted") == [{"region": "eu-west", "cloud": "aws", "actor": "user:ops"}]
    assert created(world).attempt == 3  # the name can be used again


def test_seeded_regions_are_not_managed_here(world: dict[str, Any]) -> None:
    world["service"].seed_local("http://127.0.0.1:8000")
    with pytest.raises(ConflictError) as refused:
        world["service"].delete("local", OPS)
    assert "seeded" in refused.value.message


def test_a_region_shows_its_health_apart_from_its_admin_status(world: dict[str, Any]) -> None:
    """``status`` is what an admin set (active, draining); ``health`` says whether a namespace can be
    placed there now: an active region whose only cluster is unhealthy is ``unavailable``."""
    service, registry = world["service"], world["registry"]

    def seeded(name: str, *statuses: str, status: str = "active") -> str:
        clusters = tuple(
            Cluster(f"{name}-{i}", name, "aws", f"{name}-{i}.proxy:8081", s, 4)  # type: ignore[arg-type]
            for i, s in enumerate(statuses, start=1)
        )
        registry.seed(Region(name, "aws", name, status, clusters))  # type: ignore[arg-type]
        return str(service.view(registry.get(name))["health"])

    assert seeded("fine", "active", "active") == "healthy"
    assert seeded("half", "active", "unhealthy") == "degraded"
    assert seeded("sick", "unhealthy") == "unavailable"
    assert seeded("empty") == "unavailable"
    assert seeded("leaving", "draining", status="draining") == "unavailable"
    assert seeded("retiring", "active", "retired") == "healthy"
    sick = registry.get("sick")
    assert sick.status == "active"  # the stored admin state is left as it is
    with pytest.raises(NoCapacityError):  # and placement agrees with what is shown
        world["placement"].take_capacity("sick", STARTER)
