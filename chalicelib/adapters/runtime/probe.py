"""The ``ClusterProbe``: a cluster answers when its runtime service does, through the API the platform
uses (micro's HTTP API gateway, ``runtime/Runtime/Read`` as the platform's admin, no retries, a short
timeout). The local runtime (the region ``local``) runs in this process: it is up when the API is."""

from __future__ import annotations

from collections.abc import Callable

from chalicelib.domain.ports import Cluster, RuntimePort

PROBE_NAMESPACE = "micro"  # the micro issuer's own namespace: every cluster has it
PROBE_SERVICE = "platform-health-probe"


class RuntimeProbe:
    def __init__(self, runtime_for: Callable[[Cluster], RuntimePort | None]) -> None:
        """``runtime_for(cluster)``: a runtime client for probing (None: nothing to probe)."""
        self._runtime_for = runtime_for

    def probe(self, cluster: Cluster) -> None:
        runtime = self._runtime_for(cluster)
        if runtime is not None:
            runtime.read_services(PROBE_NAMESPACE, PROBE_SERVICE)  # DependencyUnavailableError when down
