"""The single table: time windows, conditional writes, the outbox, the region registry, no Scan."""

from __future__ import annotations

import dataclasses
import json
from datetime import timedelta
from typing import Any

import boto3
import pytest
from pynamodb.attributes import UnicodeAttribute

from chalicelib.adapters.dynamodb.base import BaseItem
from chalicelib.adapters.dynamodb.outbox import OutboxItem, write_with_events
from chalicelib.domain.clock import epoch_seconds
from chalicelib.domain.errors import ConditionFailedError, NotFoundError
from chalicelib.domain.events import Event
from chalicelib.domain.ports import Cluster, Region, ResourceQuota
from tests.helpers import ScanGuard


class Claim(BaseItem, discriminator="TestClaim"):
    """A time-window item, as delivery claims and locks are."""

    owner = UnicodeAttribute()

    @staticmethod
    def key(name: str) -> tuple[str, str]:
        return f"CLAIM#{name}", "CLAIM"


def claim(name: str, owner: str, now: Any, ttl: timedelta) -> None:
    pk, sk = Claim.key(name)
    item = Claim(PK=pk, SK=sk, owner=owner, expires_at=epoch_seconds(now + ttl))
    write_with_events([(item, Claim.absent_or_expired(now))], [])


def test_a_live_window_blocks_a_second_claim(container: Any, clock: Any) -> None:
    claim("deploy-lock", "first", clock.now(), timedelta(minutes=5))
    with pytest.raises(ConditionFailedError):
        claim("deploy-lock", "second", clock.now(), timedelta(minutes=5))
    assert Claim.get(*Claim.key("deploy-lock")).owner == "first"


def test_an_expired_window_counts_as_absent_even_before_ttl_removes_it(container: Any, clock: Any) -> None:
    claim("deploy-lock", "first", clock.now(), timedelta(minutes=5))
    clock.advance(timedelta(minutes=5, seconds=1))
    assert Claim.get_live(*Claim.key("deploy-lock"), clock.now()) is None
    claim("deploy-lock", "second", clock.now(), timedelta(minutes=5))
    assert Claim.get_live(*Claim.key("deploy-lock"), clock.now()).owner == "second"  # type: ignore[union-attr]


def test_a_state_change_and_its_event_are_written_together(container: Any, clock: Any) -> None:
    pk, sk = Claim.key("ns-1")
    event = Event.create("namespace.created", "ns-1", clock.now(), {"region": "local"})
    write_with_events([(Claim(PK=pk, SK=sk, owner="ada"), Claim.PK.does_not_exist())], [event])
    assert Claim.get(pk, sk).owner == "ada"
    assert [e.id for e in container.outbox.pending(10)] == [event.id]


def test_a_lost_condition_writes_neither_the_state_nor_the_event(container: Any, clock: Any) -> None:
    pk, sk = Claim.key("ns-1")
    Claim(PK=pk, SK=sk, owner="ada").save()
    event = Event.create("namespace.created", "ns-1", clock.now(), {})
    with pytest.raises(ConditionFailedError):
        write_with_events([(Claim(PK=pk, SK=sk, owner="mallory"), Claim.PK.does_not_exist())], [event])
    assert Claim.get(pk, sk).owner == "ada"
    assert container.outbox.pending(10) == []


def test_the_relay_puts_pending_events_on_the_bus_once(container: Any, clock: Any, aws: dict[str, Any]) -> None:
    sqs = boto3.client("sqs")
    queue_url = sqs.create_queue(QueueName="probe")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    aws["events"].put_rule(Name="all", EventBusName="platform-test", EventPattern=json.dumps({"source": ["platform"]}))
    aws["events"].put_targets(Rule="all", EventBusName="platform-test", Targets=[{"Id": "q", "Arn": queue_arn}])

    events = [Event.create("deployment.succeeded", "ns-1", clock.now(), {"n": i}) for i in range(12)]
    write_with_events([], events)
    result = container.outbox_relay.relay()
    assert (result.published, result.failed) == (12, 0)
    assert container.outbox.pending(100) == []
    assert container.outbox_relay.relay().published == 0  # nothing left to send

    received = []
    while True:
        msgs = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10).get("Messages", [])
        if not msgs:
            break
        received += [json.loads(m["Body"]) for m in msgs]
    assert sorted(m["detail"]["data"]["n"] for m in received) == list(range(12))
    first = received[0]
    assert first["detail-type"] == "deployment.succeeded"
    assert set(first["detail"]) == {"id", "type", "version", "namespace", "occurred_at", "data"}
    sent = OutboxItem.get(*OutboxItem.key(events[0].id))
    assert sent.status == "sent" and sent.GSI1PK is None
    assert sent.expires_at == epoch_seconds(clock.now() + timedelta(days=7))


def test_events_whose_publish_fails_stay_pending(container: Any, clock: Any) -> None:
    class HalfBroken:
        def publish(self, events: Any) -> list[str]:
            return [e.id for e in events[::2]]

    from chalicelib.domain.services.outbox_relay import OutboxRelayService

    write_with_events([], [Event.create("token.created", "ns-1", clock.now(), {"i": i}) for i in range(4)])
    result = OutboxRelayService(container.outbox, HalfBroken()).relay()
    assert (result.published, result.failed) == (2, 2)
    assert len(container.outbox.pending(10)) == 2


def test_the_outbox_relay_function_relays(container: Any, clock: Any) -> None:
    from functions.outbox_relay.handler import handler

    write_with_events([], [Event.create("token.revoked", "ns-1", clock.now(), {})])
    assert handler({}, None) == {"published": 1, "failed": 0}


def test_regions_are_seeded_once_and_read_with_one_query(container: Any) -> None:
    registry = container.regions
    local = Region(
        "local",
        "local",
        "This machine",
        "active",
        (Cluster("local-1", "local", "local", "http://127.0.0.1:8081", "active", 100),),
    )
    assert registry.seed(local) is True
    assert registry.seed(Region("local", "local", "changed", "draining")) is False
    got = registry.get("local")
    assert got.display_name == "This machine" and got.status == "active"
    assert [c.id for c in got.clusters] == ["local-1"]
    registry.put(Region("eu-west-1", "aws", "Ireland", "provisioning"))
    assert [r.name for r in registry.list()] == ["eu-west-1", "local"]
    registry.set_status("eu-west-1", "active")
    assert registry.get("eu-west-1").status == "active"
    with pytest.raises(NotFoundError):
        registry.get("mars-1")
    with pytest.raises(NotFoundError):
        registry.set_status("mars-1", "active")


def test_the_scan_guard_catches_a_scan(container: Any, _no_scans: ScanGuard) -> None:
    list(BaseItem.scan())
    with pytest.raises(AssertionError, match="Scan"):
        _no_scans.check()
    _no_scans.scans.clear()  # this test's Scan was on purpose


def test_a_cluster_stored_with_one_address_is_read_with_it_as_both(container: Any) -> None:
    """Before the HTTP API and the gRPC proxy were told apart, a cluster had one address, which the
    runtime adapter called as the HTTP API: it still is."""
    from chalicelib.adapters.dynamodb.regions import ClusterItem

    container.regions.put(Region("old-1", "aws", "Old", "active"))
    ClusterItem(
        PK="REGION#old-1",
        SK="CLUSTER#c1",
        GSI1PK="REGIONS",
        GSI1SK="old-1#CLUSTER#c1",
        cluster_id="c1",
        region="old-1",
        cloud="aws",
        proxy_address="https://api.old.example",
        status="active",
        capacity=5,
        used=0,
    ).save()
    [cluster] = container.regions.get("old-1").clusters
    assert cluster.api_address == cluster.proxy_address == "https://api.old.example"
    placement = container.stores.placement
    assert placement.api_address("old-1", "c1") == placement.proxy_address("old-1", "c1") == "https://api.old.example"


def test_the_local_regions_are_seeded_with_both_addresses_which_follow_the_configuration(container: Any) -> None:
    service, placement = container.region_service, container.stores.placement
    made = service.seed_local("http://127.0.0.1:8000", ("http://127.0.0.1:8012", "127.0.0.1:8013"))
    assert made == {"local": True, "micro-local": True}
    [micro] = container.regions.get("micro-local").clusters
    assert (micro.api_address, micro.proxy_address) == ("http://127.0.0.1:8012", "127.0.0.1:8013")
    assert placement.take_capacity("micro-local", ResourceQuota(1024, 1000, 2048)) == "micro-local-1"
    again = service.seed_local("http://127.0.0.1:9000", ("http://127.0.0.1:9012", "127.0.0.1:9013"))
    assert again == {"local": False, "micro-local": False}
    [micro] = container.regions.get("micro-local").clusters
    assert (micro.api_address, micro.proxy_address, micro.used) == ("http://127.0.0.1:9012", "127.0.0.1:9013", 1)
    assert placement.api_address("local", "local-1") == "http://127.0.0.1:9000"


class Killed(BaseException):
    """The process dies here (a BaseException: nothing in the code under test may swallow it)."""


def test_a_compensation_interrupted_after_freeing_the_slot_and_run_again_frees_it_once(
    container: Any, clock: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Any
) -> None:
    """A failed onboarding's compensation gives the namespace's room back; the Lambda dies right after
    (before the namespace is marked failed), and Step Functions' retry runs the whole compensation
    again. The cluster's counters go back once, not twice (a second release would hand the room of
    another namespace placed there to the next onboarding)."""
    from chalicelib.domain.model import Namespace

    monkeypatch.setenv("PLATFORM_LOCAL_KEY", "unit-test-local-key")
    monkeypatch.setattr(container, "settings", dataclasses.replace(container.settings, runtime_dir=str(tmp_path)))
    container.region_service.seed_local(container.settings.local_cluster_address)
    placement, namespaces = container.stores.placement, container.stores.namespaces
    team = container.catalog.quotas()["team"]
    placement.take_capacity("local", team)  # another namespace, already there
    ns = Namespace("acme-data", "acme", 1, "data", 3, "local", "team", "provisioning", clock.now(), "ada")
    namespaces.create(ns, [])
    container.namespaces.step_place("acme-data")
    [cluster] = container.regions.get("local").clusters
    assert (cluster.used, cluster.taken.cpu_millicores) == (2, 2 * team.cpu_millicores)

    release_team = namespaces.release_team
    monkeypatch.setattr(namespaces, "release_team", lambda ns: (_ for _ in ()).throw(Killed("after the release")))
    with pytest.raises(Killed):
        container.namespaces.compensate("acme-data", {"Error": "X", "Cause": "y"})
    monkeypatch.setattr(namespaces, "release_team", release_team)
    done = container.namespaces.compensate("acme-data", {"Error": "X", "Cause": "y"})  # the retry
    assert "placement" in done["undone"] and container.namespaces.get("acme-data").status == "failed"
    [cluster] = container.regions.get("local").clusters
    assert (cluster.used, cluster.taken.cpu_millicores, cluster.taken.memory_mib) == (
        1,
        team.cpu_millicores,
        team.memory_mib,
    )
