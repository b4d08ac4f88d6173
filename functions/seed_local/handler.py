"""Local stage only, at every start of the local cloud: seeds the region ``local`` and, when the local
cloud runs the micro stand-in, ``micro-local`` (idempotent)."""

from __future__ import annotations

from typing import Any

from chalicelib.composition import get_container
from chalicelib.logs import lambda_handler


@lambda_handler
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    container = get_container()
    settings = container.settings
    if settings.stage != "local":
        raise RuntimeError("seed_local runs in the local stage only")
    micro = None
    if settings.micro_local_api_address:
        micro = (settings.micro_local_api_address, settings.micro_local_proxy_address)
    created = container.region_service.seed_local(settings.local_cluster_address, micro)
    return {"region": "local", "created": created["local"], "regions": created}
