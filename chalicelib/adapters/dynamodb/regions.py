"""The region registry over the table: one partition per region holds the region and its clusters."""

from __future__ import annotations

from typing import cast

from pynamodb.attributes import NumberAttribute, UnicodeAttribute
from pynamodb.exceptions import PutError, UpdateError

from chalicelib.adapters.dynamodb.base import BaseItem, condition_failed
from chalicelib.domain.clock import Clock
from chalicelib.domain.errors import NoCapacityError, NotFoundError, ValidationError
from chalicelib.domain.ports import Cluster, Region, RegionStatus

STATUSES: tuple[RegionStatus, ...] = ("provisioning", "active", "draining", "failed", "retired")
ALL_REGIONS = "REGIONS"


class RegionItem(BaseItem, discriminator="Region"):
    name = UnicodeAttribute()
    cloud = UnicodeAttribute()
    display_name = UnicodeAttribute()
    status = UnicodeAttribute()

    @staticmethod
    def key(name: str) -> tuple[str, str]:
        return f"REGION#{name}", "REGION"

    @classmethod
    def of(cls, region: Region) -> RegionItem:
        pk, sk = cls.key(region.name)
        return cls(
            PK=pk,
            SK=sk,
            GSI1PK=ALL_REGIONS,
            GSI1SK=region.name,
            name=region.name,
            cloud=region.cloud,
            display_name=region.display_name,
            status=region.status,
        )


class ClusterItem(BaseItem, discriminator="Cluster"):
    """A cluster and its two addresses: ``api_address`` (micro's HTTP API gateway, which the platform
    calls) and ``proxy_address`` (its gRPC proxy, for the ``micro`` CLI). An item stored before the two
    were told apart has only ``proxy_address``, and it was the HTTP API's: it is read as both."""

    cluster_id = UnicodeAttribute()
    region = UnicodeAttribute()
    cloud = UnicodeAttribute()
    proxy_address = UnicodeAttribute()
    api_address = UnicodeAttribute(null=True)
    status = UnicodeAttribute()
    capacity = NumberAttribute()
    used = NumberAttribute(default=0)

    @staticmethod
    def key(region: str, cluster_id: str) -> tuple[str, str]:
        return f"REGION#{region}", f"CLUSTER#{cluster_id}"

    @classmethod
    def of(cls, c: Cluster) -> ClusterItem:
        pk, sk = cls.key(c.region, c.id)
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
        )

    def to_domain(self) -> Cluster:
        return Cluster(
            id=self.cluster_id,
            region=self.region,
            cloud=self.cloud,
            proxy_address=self.proxy_address,
            status=cast(RegionStatus, self.status),
            capacity=int(self.capacity),
            used=int(self.used),  # type: ignore[arg-type]
            api_address=self.api_address or self.proxy_address,  # migration on read
        )


def _assemble(items: list[BaseItem]) -> list[Region]:
    regions: dict[str, RegionItem] = {}
    clusters: dict[str, list[Cluster]] = {}
    for item in items:
        if isinstance(item, RegionItem):
            regions[item.name] = item
        elif isinstance(item, ClusterItem):
            clusters.setdefault(item.region, []).append(item.to_domain())
    return [
        Region(
            name=r.name,
            cloud=r.cloud,
            display_name=r.display_name,
            status=r.status,  # type: ignore[arg-type]
            clusters=tuple(clusters.get(r.name, ())),
        )
        for r in sorted(regions.values(), key=lambda r: r.name)
    ]


class DynamoRegionRegistry:
    """The ``RegionRegistry`` port. Reads: one Query per call (the region's partition, or GSI1)."""

    def __init__(self, clock: Clock) -> None:
        self._clock = clock

    def get(self, name: str) -> Region:
        pk, _ = RegionItem.key(name)
        found = _assemble(list(BaseItem.query(pk)))
        if not found:
            raise NotFoundError(f"region {name!r} does not exist", {"region": name})
        return found[0]

    def list(self) -> list[Region]:
        return _assemble(list(BaseItem.gsi1.query(ALL_REGIONS)))

    def put(self, region: Region) -> None:
        if region.status not in STATUSES:
            raise ValidationError(f"unknown region status {region.status!r}", {"status": region.status})
        item = RegionItem.of(region)
        item.created_at = self._clock.now()
        item.save()

    def add_cluster(self, cluster: Cluster) -> None:
        self.get(cluster.region)
        item = ClusterItem.of(cluster)
        item.created_at = self._clock.now()
        item.save()

    def set_status(self, name: str, status: RegionStatus) -> None:
        if status not in STATUSES:
            raise ValidationError(f"unknown region status {status!r}", {"status": status})
        pk, sk = RegionItem.key(name)
        try:
            RegionItem(PK=pk, SK=sk).update(actions=[RegionItem.status.set(status)], condition=RegionItem.PK.exists())
        except Exception as e:
            if condition_failed(e):
                raise NotFoundError(f"region {name!r} does not exist", {"region": name}) from e
            raise

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


class DynamoPlacementStore:
    """Placement: the region's active clusters (one Query), the one with the most free room taken with
    a conditional ``used < capacity`` update; a lost race tries the next."""

    def take_capacity(self, region: str) -> str:
        pk, _ = RegionItem.key(region)
        clusters = [
            i
            for i in ClusterItem.query(pk, ClusterItem.SK.startswith("CLUSTER#"), consistent_read=True)
            if isinstance(i, ClusterItem) and i.status == "active"
        ]
        for c in sorted(clusters, key=lambda c: int(c.capacity) - int(c.used), reverse=True):
            if int(c.used) >= int(c.capacity):
                break
            try:
                c.update(
                    actions=[ClusterItem.used.add(1)],
                    condition=(ClusterItem.status == "active") & (ClusterItem.used < ClusterItem.capacity),
                )
                return c.cluster_id
            except UpdateError as e:
                if not condition_failed(e):
                    raise
        raise NoCapacityError(f"no active cluster in region {region!r} has room for a namespace", {"region": region})

    def release_capacity(self, region: str, cluster_id: str) -> None:
        pk, sk = ClusterItem.key(region, cluster_id)
        try:
            ClusterItem(PK=pk, SK=sk).update(actions=[ClusterItem.used.add(-1)], condition=ClusterItem.used > 0)
        except UpdateError as e:
            if not condition_failed(e):
                raise

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
