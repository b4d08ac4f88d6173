"""Local stage only, at every start of the local cloud: seeds the region ``local`` (idempotent)."""

from __future__ import annotations

from typing import Any

from chalicelib.composition import get_container


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    container = get_container()
    if container.settings.stage != "local":
        raise RuntimeError("seed_local runs in the local stage only")
    created = container.region_service.seed_local(container.settings.local_cluster_address)
    return {"region": "local", "created": created}
