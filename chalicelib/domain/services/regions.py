"""Regions and their clusters, as placement sees them."""

from __future__ import annotations

from chalicelib.domain.ports import Cluster, Region, RegionRegistry

LOCAL_REGION = "local"
MICRO_LOCAL_REGION = "micro-local"


def local_region(cluster_address: str, capacity: int = 100) -> Region:
    """The local stage's own region: this machine, with one cluster (the local runtime, whose one
    address serves both as its API and as what ``~/.micro`` is given)."""
    return Region(
        name=LOCAL_REGION,
        cloud="local",
        display_name="This machine",
        status="active",
        clusters=(
            Cluster("local-1", LOCAL_REGION, "local", cluster_address, "active", capacity, api_address=cluster_address),
        ),
    )


def micro_local_region(api_address: str, proxy_address: str, capacity: int = 100) -> Region:
    """The local stage's second region: one cluster that is the micro stand-in (micro v3's HTTP API
    gateway at ``api_address``; ``proxy_address`` where its gRPC proxy would be), driven through
    ``MicroRuntime`` as a real cluster is."""
    return Region(
        name=MICRO_LOCAL_REGION,
        cloud="local",
        display_name="This machine, through micro's runtime API (the micro stand-in)",
        status="active",
        clusters=(
            Cluster(
                "micro-local-1", MICRO_LOCAL_REGION, "local", proxy_address, "active", capacity, api_address=api_address
            ),
        ),
    )


class RegionService:
    def __init__(self, registry: RegionRegistry) -> None:
        self._registry = registry

    def seed_local(self, cluster_address: str, micro: tuple[str, str] | None = None) -> dict[str, bool]:
        """Create the local region, and ``micro-local`` when the micro stand-in's addresses (api, proxy)
        are given, unless they exist (idempotent: every start of the local cloud); answer which were made.
        The addresses of existing ones follow the configuration."""
        made = {LOCAL_REGION: self._registry.seed(local_region(cluster_address))}
        if micro is not None:
            made[MICRO_LOCAL_REGION] = self._registry.seed(micro_local_region(*micro))
        return made
