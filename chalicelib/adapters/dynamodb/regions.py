"""The region registry over the table: one partition per region holds the region and its clusters."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, cast

from pynamodb.attributes import BooleanAttribute, NumberAttribute, UnicodeAttribute, UTCDateTimeAttribute
from pynamodb.exceptions import PutError, UpdateError

from chalicelib.adapters.dynamodb.base import BaseItem, condition_failed
from chalicelib.adapters.dynamodb.outbox import write_with_events
from chalicelib.domain.clock import Clock
from chalicelib.domain.errors import (
    ConditionFailedError,
    ConflictError,
    NoCapacityError,
    NotFoundError,
    ValidationError,
)
from chalicelib.domain.events import Event
from chalicelib.domain.ports import Capacity, Cluster, PlanSummary, Region, RegionStatus, ResourceQuota

STATUSES: tuple[RegionStatus, ...] = (
    "provisioning",
    "planning",
    "awaiting_approval",
    "applying",
    "registering",
    "active",
    "unhealthy",
    "draining",
    "destroying",
    "failed",
    "retired",
    "deleted",
)
ALL_REGIONS = "REGIONS"
# Fields ``update`` may change (the domain's names; the plan summary is three numbers).
REGION_FIELDS = {
    "status",
    "status_at",
    "attempt",
    "action",
    "plan_summary",
    "failure_reason",
    "failure_step",
    "log_excerpt",
    "approval_token",
    "require_approval",
}


class RegionItem(BaseItem, discriminator="Region"):
    name = UnicodeAttribute()
    cloud = UnicodeAttribute()
    display_name = UnicodeAttribute()
    status = UnicodeAttribute()
    # provisioned by the platform (POST /v1/regions); absent on seeded regions
    cloud_region = UnicodeAttribute(null=True)
    size = UnicodeAttribute(null=True)
    require_approval = BooleanAttribute(null=True)
    managed = BooleanAttribute(null=True)
    attempt = NumberAttribute(null=True)
    action = UnicodeAttribute(null=True)
    plan_add = NumberAttribute(null=True)
    plan_change = NumberAttribute(null=True)
    plan_destroy = NumberAttribute(null=True)
    failure_reason = UnicodeAttribute(null=True)
    failure_step = UnicodeAttribute(null=True)
    log_excerpt = UnicodeAttribute(null=True)
    created_by = UnicodeAttribute(null=True)
    status_at = UTCDateTimeAttribute(null=True)
    # the AwaitApproval step's task token: read by the approve route only, never shown
    approval_token = UnicodeAttribute(null=True)

    @staticmethod
    def key(name: str) -> tuple[str, str]:
        return f"REGION#{name}", "REGION"

    @classmethod
    def of(cls, region: Region) -> RegionItem:
        pk, sk = cls.key(region.name)
        item = cls(
            PK=pk,
            SK=sk,
            GSI1PK=ALL_REGIONS,
            GSI1SK=region.name,
            name=region.name,
            cloud=region.cloud,
            display_name=region.display_name,
            status=region.status,
        )
        if region.managed:
            item.cloud_region = region.cloud_region
            item.size = region.size
            item.require_approval = region.require_approval
            item.managed = True
            item.attempt = region.attempt
            item.action = region.action
            item.created_by = region.created_by
            item.status_at = region.status_at
        return item


class ClusterItem(BaseItem, discriminator="Cluster"):
    """A cluster and its two addresses: ``api_address`` (micro's HTTP API gateway, which the platform
    calls) and ``proxy_address`` (its gRPC proxy, for the ``micro`` CLI). An item stored before the two
    were told apart has only ``proxy_address``, and it was the HTTP API's: it is read as both.

    Room: ``cpu_capacity``/``memory_capacity`` (what the cluster accepts) and ``cpu_used``/``memory_used``
    (the quotas of the namespaces placed there); an item registered before (``capacity`` namespaces only)
    is read as that many namespaces of the smallest plan. ``used`` still counts the namespaces."""

    cluster_id = UnicodeAttribute()
    region = UnicodeAttribute()
    cloud = UnicodeAttribute()
    proxy_address = UnicodeAttribute()
    api_address = UnicodeAttribute(null=True)
    status = UnicodeAttribute()
    capacity = NumberAttribute()
    used = NumberAttribute(default=0)
    cpu_capacity = NumberAttribute(null=True)
    memory_capacity = NumberAttribute(null=True)
    cpu_used = NumberAttribute(null=True)
    memory_used = NumberAttribute(null=True)
    credentials_secret = UnicodeAttribute(null=True)
    health_failures = NumberAttribute(null=True)
    unhealthy_since = UTCDateTimeAttribute(null=True)
    last_check_at = UTCDateTimeAttribute(null=True)
    last_check_error = UnicodeAttribute(null=True)

    @staticmethod
    def key(region: str, cluster_id: str) -> tuple[str, str]:
        return f"REGION#{region}", f"CLUSTER#{cluster_id}"

    @classmethod
    def of(cls, c: Cluster) -> ClusterItem:
        pk, sk = cls.key(c.region, c.id)
        total = c.total
        return cls(
            PK=pk,
            SK=sk,
            GSI1PK=ALL_REGIONS,
            GSI1SK=f"{c.region}#CLUSTER#{c.id}",
            cluster_id=c.id,
            region=c.region,
            cloud=c.cloud,
            proxy_address=c.proxy_address,
            api_address=c.api,
            status=c.status,
            capacity=c.capacity,
            used=c.used,
            cpu_capacity=total.cpu_millicores,
            memory_capacity=total.memory_mib,
            cpu_used=c.taken.cpu_millicores,
            memory_used=c.taken.memory_mib,
            credentials_secret=c.credentials_secret or None,
            health_failures=c.health_failures,
        )

    def to_domain(self) -> Cluster:
        capacity, used = int(self.capacity), int(self.used)  # type: ignore[arg-type]
        room = (
            Capacity(int(self.cpu_capacity), int(self.memory_capacity))
            if self.cpu_capacity is not None and self.memory_capacity is not None
            else None
        )
        taken = (
            Capacity(int(self.cpu_used or 0), int(self.memory_used or 0))
            if self.cpu_used is not None
            else Capacity(used * 1000, used * 1024)  # registered by count: each one a smallest plan
        )
        return Cluster(
            id=self.cluster_id,
            region=self.region,
            cloud=self.cloud,
            proxy_address=self.proxy_address,
            status=cast(RegionStatus, self.status),
            capacity=capacity,
            used=used,
            api_address=self.api_address or self.proxy_address,  # migration on read
            room=room,
            taken=taken,
            credentials_secret=self.credentials_secret or "",
            health_failures=int(self.health_failures or 0),
            unhealthy_since=self.unhealthy_since,
            last_check_at=self.last_check_at,
            last_check_error=self.last_check_error,
        )


def _region_of(r: RegionItem, clusters: Sequence[Cluster]) -> Region:
    summary = (
        PlanSummary(int(r.plan_add), int(r.plan_change or 0), int(r.plan_destroy or 0))
        if r.plan_add is not None
        else None
    )
    return Region(
        name=r.name,
        cloud=r.cloud,
        display_name=r.display_name,
        status=cast(RegionStatus, r.status),
        clusters=tuple(clusters),
        cloud_region=r.cloud_region or "",
        size=r.size or "",
        require_approval=bool(r.require_approval),
        managed=bool(r.managed),
        attempt=int(r.attempt or 0),
        action=r.action or "",
        plan_summary=summary,
        failure_reason=r.failure_reason,
        failure_step=r.failure_step,
        log_excerpt=r.log_excerpt,
        created_by=r.created_by,
        status_at=r.status_at,
    )


def _assemble(items: list[BaseItem]) -> list[Region]:
    regions: dict[str, RegionItem] = {}
    clusters: dict[str, list[Cluster]] = {}
    for item in items:
        if isinstance(item, RegionItem):
            regions[item.name] = item
        elif isinstance(item, ClusterItem):
            clusters.setdefault(item.region, []).append(item.to_domain())
    return [_region_of(r, clusters.get(r.name, ())) for r in sorted(regions.values(), key=lambda r: r.name)]


def _check_status(status: str) -> None:
    if status not in STATUSES:
        raise ValidationError(f"unknown region status {status!r}", {"status": status})


class DynamoRegionRegistry:
    """The ``RegionRegistry`` port. Reads: one Query per call (the region's partition, or GSI1)."""

    def __init__(self, clock: Clock) -> None:
        self._clock = clock

    def get(self, name: str) -> Region:
        pk, _ = RegionItem.key(name)
        found = _assemble(list(BaseItem.query(pk, consistent_read=True)))
        if not found:
            raise NotFoundError(f"region {name!r} does not exist", {"region": name})
        return found[0]

    def list(self) -> list[Region]:
        return _assemble(list(BaseItem.gsi1.query(ALL_REGIONS)))

    def put(self, region: Region) -> None:
        _check_status(region.status)
        item = RegionItem.of(region)
        item.created_at = self._clock.now()
        item.save()

    def create(self, region: Region) -> None:
        """A new region, or one whose earlier life ended (``deleted``) made again."""
        _check_status(region.status)
        item = RegionItem.of(region)
        item.created_at = self._clock.now()
        try:
            item.save(condition=RegionItem.PK.does_not_exist() | (RegionItem.status == "deleted"))
        except PutError as e:
            if condition_failed(e):
                raise ConflictError(f"the region {region.name!r} exists", {"region": region.name}) from e
            raise

    def update(
        self,
        name: str,
        changes: dict[str, Any],
        *,
        expect_status: Sequence[RegionStatus] | None = None,
        events: Sequence[Event] = (),
    ) -> Region:
        unknown = set(changes) - REGION_FIELDS
        if unknown:
            raise ValueError(f"not region fields: {sorted(unknown)}")
        if "status" in changes:
            _check_status(changes["status"])
        pk, sk = RegionItem.key(name)
        actions: list[Any] = []
        for field_name, value in changes.items():
            if field_name == "plan_summary":
                parts = (RegionItem.plan_add, RegionItem.plan_change, RegionItem.plan_destroy)
                if value is None:
                    actions += [a.remove() for a in parts]
                else:
                    actions += [a.set(v) for a, v in zip(parts, (value.add, value.change, value.destroy), strict=True)]
                continue
            attr = getattr(RegionItem, field_name)
            actions.append(attr.remove() if value is None else attr.set(value))
        condition = RegionItem.PK.exists()
        if expect_status:
            condition &= RegionItem.status.is_in(*expect_status)
        try:
            write_with_events([], events, updates=[(RegionItem(PK=pk, SK=sk), actions, condition)])
        except ConditionFailedError as e:
            current = self.get(name)  # NotFoundError when there is none
            raise ConflictError(
                f"the region {name} is {current.status}",
                {"region": name, "status": current.status, "expected": list(expect_status or [])},
            ) from e
        return self.get(name)

    def approval_token(self, name: str) -> str | None:
        try:
            return RegionItem.get(*RegionItem.key(name), consistent_read=True).approval_token
        except RegionItem.DoesNotExist:
            raise NotFoundError(f"region {name!r} does not exist", {"region": name}) from None

    def add_cluster(self, cluster: Cluster) -> None:
        self.get(cluster.region)
        item = ClusterItem.of(cluster)
        item.created_at = self._clock.now()
        item.save()

    def put_cluster(self, cluster: Cluster, events: Sequence[Event] = ()) -> None:
        """Registered again (a retried registration), a cluster keeps what is placed on it."""
        pk, sk = ClusterItem.key(cluster.region, cluster.id)
        try:
            ClusterItem.get(pk, sk, consistent_read=True)
        except ClusterItem.DoesNotExist:
            item = ClusterItem.of(cluster)
            item.created_at = self._clock.now()
            write_with_events([(item, ClusterItem.PK.does_not_exist())], events)
            return
        total = cluster.total
        actions: list[Any] = [
            ClusterItem.proxy_address.set(cluster.proxy_address),
            ClusterItem.api_address.set(cluster.api),
            ClusterItem.status.set(cluster.status),
            ClusterItem.capacity.set(cluster.capacity),
            ClusterItem.cpu_capacity.set(total.cpu_millicores),
            ClusterItem.memory_capacity.set(total.memory_mib),
            ClusterItem.health_failures.set(0),
            ClusterItem.credentials_secret.set(cluster.credentials_secret)
            if cluster.credentials_secret
            else ClusterItem.credentials_secret.remove(),
        ]
        write_with_events([], events, updates=[(ClusterItem(PK=pk, SK=sk), actions, ClusterItem.PK.exists())])

    def set_status(self, name: str, status: RegionStatus) -> None:
        _check_status(status)
        pk, sk = RegionItem.key(name)
        try:
            RegionItem(PK=pk, SK=sk).update(actions=[RegionItem.status.set(status)], condition=RegionItem.PK.exists())
        except Exception as e:
            if condition_failed(e):
                raise NotFoundError(f"region {name!r} does not exist", {"region": name}) from e
            raise

    def set_cluster_status(
        self,
        region: str,
        cluster_id: str,
        status: RegionStatus,
        *,
        expect_status: Sequence[RegionStatus] | None = None,
        events: Sequence[Event] = (),
    ) -> None:
        _check_status(status)
        pk, sk = ClusterItem.key(region, cluster_id)
        condition = ClusterItem.PK.exists()
        if expect_status:
            condition &= ClusterItem.status.is_in(*expect_status)
        try:
            write_with_events(
                [], events, updates=[(ClusterItem(PK=pk, SK=sk), [ClusterItem.status.set(status)], condition)]
            )
        except ConditionFailedError as e:
            raise ConflictError(
                f"the cluster {cluster_id} of {region} is not in a state that allows this",
                {"cluster": cluster_id, "expected": list(expect_status or [])},
            ) from e

    def record_check(
        self,
        cluster: Cluster,
        *,
        now: datetime,
        error: str | None,
        status: RegionStatus | None = None,
        events: Sequence[Event] = (),
    ) -> bool:
        pk, sk = ClusterItem.key(cluster.region, cluster.id)
        failures = cluster.health_failures + 1 if error else 0
        actions: list[Any] = [
            ClusterItem.health_failures.set(failures),
            ClusterItem.last_check_at.set(now),
            ClusterItem.last_check_error.set(error[:500]) if error else ClusterItem.last_check_error.remove(),
        ]
        if error and cluster.health_failures == 0:
            actions.append(ClusterItem.unhealthy_since.set(now))  # the first failure of the episode
        elif not error:
            actions.append(ClusterItem.unhealthy_since.remove())
        if status is not None:
            actions.append(ClusterItem.status.set(status))
        # As read: the same status and failure count (a check that raced this one changed them).
        condition = (ClusterItem.status == cluster.status) & (
            ClusterItem.health_failures == cluster.health_failures
            if cluster.health_failures
            else (ClusterItem.health_failures.does_not_exist() | (ClusterItem.health_failures == 0))
        )
        try:
            write_with_events([], events, updates=[(ClusterItem(PK=pk, SK=sk), actions, condition)])
        except ConditionFailedError:
            return False
        return True

    def delete_cluster(self, region: str, cluster_id: str) -> None:
        ClusterItem(*ClusterItem.key(region, cluster_id)).delete()

    def seed(self, region: Region) -> bool:
        """Create the region and its clusters unless the region exists; answer whether it did. When it
        exists, the addresses of its clusters are brought up to date (a seeded cluster's addresses follow
        the configuration: the local cloud's ports), and nothing else (not their room, not their status)."""
        item = RegionItem.of(region)
        item.created_at = self._clock.now()
        try:
            item.save(condition=RegionItem.PK.does_not_exist())
        except PutError as e:
            if condition_failed(e):
                for cluster in region.clusters:
                    self._set_addresses(cluster)
                return False
            raise
        for cluster in region.clusters:
            self.add_cluster(cluster)
        return True

    def _set_addresses(self, cluster: Cluster) -> None:
        pk, sk = ClusterItem.key(cluster.region, cluster.id)
        try:
            ClusterItem(PK=pk, SK=sk).update(
                actions=[
                    ClusterItem.proxy_address.set(cluster.proxy_address),
                    ClusterItem.api_address.set(cluster.api),
                ],
                condition=ClusterItem.PK.exists(),
            )
        except UpdateError as e:
            if not condition_failed(e):
                raise
            self.add_cluster(cluster)  # a cluster the region did not have yet


class ReleasedItem(BaseItem, discriminator="PlacementReleased"):
    """That a namespace's placement (one onboarding attempt) on a cluster was given back: written in
    the same transaction as the cluster's decrement, on the condition that it does not exist yet."""

    @staticmethod
    def key(placement: str, region: str, cluster_id: str) -> tuple[str, str]:
        return f"PLACEMENT#{placement}", f"RELEASED#{region}#{cluster_id}"


class DynamoPlacementStore:
    """Placement: the region's active clusters (one Query), the one with the most free room taken with
    a conditional update that adds the namespace's quota only while it still fits (the condition is
    ``used <= capacity - quota`` for CPU and memory, computed from the capacity read, which the
    condition also checks); a lost race tries the next."""

    def take_capacity(self, region: str, quota: ResourceQuota) -> str:
        pk, _ = RegionItem.key(region)
        clusters = [
            i
            for i in ClusterItem.query(pk, ClusterItem.SK.startswith("CLUSTER#"), consistent_read=True)
            if isinstance(i, ClusterItem) and i.status == "active"
        ]
        views = sorted(
            ((i, i.to_domain()) for i in clusters),
            key=lambda pair: (pair[1].free.cpu_millicores, pair[1].free.memory_mib),
            reverse=True,
        )
        for item, c in views:
            total, taken = c.total, c.taken
            if taken.cpu_millicores + quota.cpu_millicores > total.cpu_millicores:
                continue
            if taken.memory_mib + quota.memory_mib > total.memory_mib:
                continue
            max_cpu = total.cpu_millicores - quota.cpu_millicores
            max_memory = total.memory_mib - quota.memory_mib
            condition = (ClusterItem.status == "active") & (ClusterItem.capacity == c.capacity)
            if item.cpu_used is None:  # registered by count: its room is written now, from what was read
                condition &= ClusterItem.cpu_used.does_not_exist() & (ClusterItem.used == c.used)
            else:
                condition &= (ClusterItem.cpu_used <= max_cpu) & (ClusterItem.memory_used <= max_memory)
                condition &= (ClusterItem.cpu_capacity == total.cpu_millicores) & (
                    ClusterItem.memory_capacity == total.memory_mib
                )
            try:
                item.update(
                    actions=[
                        ClusterItem.used.add(1),
                        ClusterItem.cpu_capacity.set(total.cpu_millicores),
                        ClusterItem.memory_capacity.set(total.memory_mib),
                        ClusterItem.cpu_used.set(taken.cpu_millicores + quota.cpu_millicores)
                        if item.cpu_used is None
                        else ClusterItem.cpu_used.add(quota.cpu_millicores),
                        ClusterItem.memory_used.set(taken.memory_mib + quota.memory_mib)
                        if item.cpu_used is None
                        else ClusterItem.memory_used.add(quota.memory_mib),
                    ],
                    condition=condition,
                )
                return c.id
            except UpdateError as e:
                if not condition_failed(e):
                    raise
        raise NoCapacityError(
            f"no active cluster in region {region!r} has room for a namespace of this plan "
            f"({quota.cpu_millicores} millicores, {quota.memory_mib} MiB)",
            {"region": region, "cpu_millicores": quota.cpu_millicores, "memory_mib": quota.memory_mib},
        )

    def release_capacity(
        self, region: str, cluster_id: str, quota: ResourceQuota, placement: str | None = None
    ) -> None:
        """Give ``quota`` back to the cluster. With ``placement`` (``<namespace>#<attempt>``) it is
        given back once however often this runs: the decrement and a marker of the release (condition:
        no marker yet) are one transaction, so a compensation or an offboarding re-run after a crash
        frees the slot once."""
        by_quota = (
            [
                ClusterItem.used.add(-1),
                ClusterItem.cpu_used.add(-quota.cpu_millicores),
                ClusterItem.memory_used.add(-quota.memory_mib),
            ],
            (ClusterItem.used > 0)
            & (ClusterItem.cpu_used >= quota.cpu_millicores)
            & (ClusterItem.memory_used >= quota.memory_mib),
        )
        # A namespace placed before room was counted by quota: the count alone goes back.
        by_count = ([ClusterItem.used.add(-1)], ClusterItem.used > 0)
        for actions, condition in (by_quota, by_count):
            if self._release(region, cluster_id, actions, condition, placement):
                return

    def _release(self, region: str, cluster_id: str, actions: list[Any], condition: Any, placement: str | None) -> bool:
        """True when done (released now, or by an earlier run); False when the cluster's condition failed."""
        cluster = ClusterItem(*ClusterItem.key(region, cluster_id))
        if placement is None:
            try:
                cluster.update(actions=actions, condition=condition)
                return True
            except UpdateError as e:
                if not condition_failed(e):
                    raise
                return False
        marker = ReleasedItem(*ReleasedItem.key(placement, region, cluster_id))
        try:
            write_with_events([(marker, ReleasedItem.PK.does_not_exist())], [], updates=[(cluster, actions, condition)])
            return True
        except ConditionFailedError as e:
            failed = e.details.get("failed") or []
            return 0 in failed  # the marker exists: released already, nothing more to give back

    def cluster(self, region: str, cluster_id: str) -> Cluster:
        try:
            return ClusterItem.get(*ClusterItem.key(region, cluster_id)).to_domain()
        except ClusterItem.DoesNotExist:
            raise NotFoundError(f"cluster {cluster_id} of {region} does not exist", {"cluster": cluster_id}) from None

    def api_address(self, region: str, cluster_id: str) -> str:
        """micro's HTTP API gateway of the cluster: what the platform's runtime adapter calls."""
        return self.cluster(region, cluster_id).api

    def proxy_address(self, region: str, cluster_id: str) -> str:
        """The cluster's gRPC proxy: what the ``micro`` CLI is configured with."""
        return self.cluster(region, cluster_id).proxy_address
