"""Regions and their clusters, as placement sees them."""

from __future__ import annotations

from chalicelib.domain.ports import Cluster, Region, RegionRegistry

LOCAL_REGION = "local"


def local_region(cluster_address: str, capacity: int = 100) -> Region:
    """The one region of the local stage: this machine, with one cluster (the local runtime)."""
    return Region(
        name=LOCAL_REGION,
        cloud="local",
        display_name="This machine",
        status="active",
        clusters=(Cluster("local-1", LOCAL_REGION, "local", cluster_address, "active", capacity),),
    )


class RegionService:
    def __init__(self, registry: RegionRegistry) -> None:
        self._registry = registry

    def seed_local(self, cluster_address: str) -> bool:
        """Create the local region unless it exists (idempotent: every start of the local cloud)."""
        return self._registry.seed(local_region(cluster_address))
