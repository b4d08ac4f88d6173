"""Usage: ingestion (``POST /v1/usage/events``, a region's ingest token only), the ingest tokens
(platform admins), the plans, and a namespace's usage over time."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from chalice.app import Blueprint, Response

from chalicelib.api.registry import MAX_BODY_BYTES, Auth, Call, registry
from chalicelib.composition import get_container
from chalicelib.domain.errors import (
    BadRequestError,
    DependencyUnavailableError,
    ForbiddenError,
    NotFoundError,
    PayloadTooLargeError,
    UnsupportedMediaTypeError,
    ValidationError,
)

if TYPE_CHECKING:
    from chalicelib.domain.metering import Plan
    from chalicelib.domain.model import IngestToken

bp = Blueprint(__name__)
S = "chalicelib.api.schemas.usage"
MAX_EVENTS = 1000  # chalicelib.domain.metering.MAX_BATCH (not imported here: the app imports this module)


def parse_batch(request: Any) -> list[Any]:
    """``{"events": [...]}`` read exactly: numbers become ``Decimal`` (never a float, no digit limit),
    and the non-JSON literals ``NaN``/``Infinity`` (which Python's json accepts) become non-finite
    decimals, so the event that carries one is rejected by its index (``invalid_value``), not the
    batch. Not JSON: 400 ``invalid_json``; not a batch: 400 ``invalid_batch``; over 1,000 events: 413."""
    content_type = (request.headers.get("content-type") or "").split(";")[0].strip().lower()
    raw: bytes = request.raw_body or b""
    if len(raw) > MAX_BODY_BYTES:
        raise PayloadTooLargeError(
            f"the body is {len(raw)} bytes; the limit is {MAX_BODY_BYTES}", {"limit": MAX_BODY_BYTES}
        )
    if raw and content_type != "application/json":
        raise UnsupportedMediaTypeError("send the body as application/json", {"content_type": content_type or None})
    try:
        data = json.loads(raw, parse_float=Decimal, parse_int=Decimal, parse_constant=Decimal) if raw else None
    except (UnicodeDecodeError, ValueError, RecursionError) as e:
        raise BadRequestError("the body is not valid JSON", {"reason": str(e)[:200]}, code="invalid_json") from e
    if not isinstance(data, dict) or set(data) != {"events"} or not isinstance(data["events"], list):
        raise BadRequestError(
            'the body must be a batch: {"events": [...]}', {"expected": {"events": "array"}}, code="invalid_batch"
        )
    events: list[Any] = data["events"]
    if len(events) > MAX_EVENTS:
        raise PayloadTooLargeError(
            f"a batch holds at most {MAX_EVENTS} events; this one has {len(events)}",
            {"limit": MAX_EVENTS, "events": len(events)},
        )
    return events


@registry.route(
    bp,
    "/v1/usage/events",
    "POST",
    tag="usage",
    auth=Auth(role="ingest"),
    request=f"{S}:UsageBatchIn",
    parse=parse_batch,
    response=f"{S}:IngestOut",
    errors=(BadRequestError, ForbiddenError, PayloadTooLargeError, DependencyUnavailableError),
    summary="Post usage events (a region's ingest token): each counted exactly once, invalid ones rejected by index",
)
def ingest_usage_events(call: Call) -> dict[str, Any]:
    result = get_container().ingestion.ingest(call.body, region=call.principal.ingest_region)
    return {
        "accepted": result.accepted,
        "duplicates": result.duplicates,
        "rejected": [{"index": r.index, "code": r.code, "message": r.message} for r in result.rejected],
    }


# ---------------------------------------------------------------------------- ingest tokens


def ingest_token_view(t: IngestToken) -> dict[str, Any]:
    return {
        "id": t.id,
        "region": t.region,
        "name": t.name,
        "created_by": t.created_by,
        "created_at": t.created_at,
        "last_used_at": t.last_used_at,
    }


ADMIN = Auth(scope="admin", role="platform_admin")


@registry.route(
    bp,
    "/v1/regions/{region}/ingest-tokens",
    "POST",
    tag="usage",
    status=201,
    auth=ADMIN,
    request=f"{S}:IngestTokenIn",
    response=f"{S}:IngestTokenCreatedOut",
    errors=(ForbiddenError, NotFoundError, ValidationError),
    summary="Mint an ingest token for a region's runtime side; the secret is shown once",
)
def create_ingest_token(call: Call) -> dict[str, Any]:
    secret, token = get_container().ingest_tokens.create(call.principal, call.params["region"], call.body.name)
    return {**ingest_token_view(token), "token": secret}


@registry.route(
    bp,
    "/v1/regions/{region}/ingest-tokens",
    "GET",
    tag="usage",
    auth=ADMIN,
    response=f"{S}:IngestTokensOut",
    errors=(ForbiddenError, NotFoundError),
    summary="A region's live ingest tokens (no secrets), with when each was last used",
)
def list_ingest_tokens(call: Call) -> dict[str, Any]:
    return {"tokens": [ingest_token_view(t) for t in get_container().ingest_tokens.list(call.params["region"])]}


@registry.route(
    bp,
    "/v1/regions/{region}/ingest-tokens/{token_id}",
    "DELETE",
    tag="usage",
    status=204,
    auth=ADMIN,
    errors=(ForbiddenError, NotFoundError),
    response_content_type="text/plain",
    summary="Revoke an ingest token (it answers 401 at once)",
)
def revoke_ingest_token(call: Call) -> Response:
    get_container().ingest_tokens.revoke(call.params["region"], call.params["token_id"])
    return Response(body="", status_code=204, headers={"Content-Type": "text/plain"})


# ---------------------------------------------------------------------------- plans and usage


def plan_view(plan: Plan) -> dict[str, Any]:
    return {
        "name": plan.name,
        "display_name": plan.display_name,
        "base_price": plan.base_price,
        "quota": {
            "memory_mib": plan.quota.memory_mib,
            "cpu_millicores": plan.quota.cpu_millicores,
            "ephemeral_storage_mib": plan.quota.ephemeral_storage_mib,
        },
        "prices": {
            meter: [
                {
                    "up_to": None if t.up_to is None else str(t.up_to),
                    "unit_amount_decimal": format(t.unit_amount_decimal, "f"),
                    "flat_amount": t.flat_amount,
                }
                for t in tiers
            ]
            for meter, tiers in plan.prices.items()
        },
        "included": {meter: None if (n := plan.included(meter)) is None else str(n) for meter in sorted(plan.prices)},
    }


@registry.route(
    bp,
    "/v1/plans",
    "GET",
    tag="usage",
    auth=Auth(scope="read"),
    response=f"{S}:PlansOut",
    summary="The plans with their prices, included quantities and quotas, and the meters",
)
def list_plans(call: Call) -> dict[str, Any]:
    catalog = get_container().catalog
    return {
        "currency": catalog.currency,
        "meters": [
            {
                "name": m.name,
                "display_name": m.display_name,
                "unit": m.unit,
                "aggregation": m.aggregation,
                "ingest": m.ingest,
            }
            for m in catalog.meters.values()
        ],
        "plans": [plan_view(p) for p in catalog.plans.values()],
    }


@registry.route(
    bp,
    "/v1/namespaces/{ns}/usage",
    "GET",
    tag="usage",
    auth=Auth(scope="read", role="viewer"),
    response=f"{S}:UsageOut",
    errors=(ForbiddenError, NotFoundError, ValidationError),
    query={
        "meter": "one meter (default: all)",
        "service": "one service (default: all)",
        "from": "ISO-8601 start, rounded down to the hour or day (default: the start of the current month, UTC)",
        "to": "ISO-8601 end, exclusive, rounded up (default: the end of the current hour); at most 35 days after from",
        "granularity": "hour (default) or day",
    },
    summary="The namespace's usage per meter and service, by hour or day, with totals (decimal strings)",
)
def namespace_usage(call: Call) -> dict[str, Any]:
    from chalicelib.domain.metering import format_micros

    q = {k: v for k, v in call.query.items() if v != ""}  # an empty parameter is an absent one
    series = get_container().usage.series(
        call.params["ns"],
        meter=q.get("meter"),
        service=q.get("service"),
        start=call.time_param("from"),
        end=call.time_param("to"),
        granularity=q.get("granularity", "hour"),
    )
    return {
        "from": series.start,
        "to": series.end,
        "granularity": series.granularity,
        "series": [
            {"meter": p.meter, "service": p.service or None, "start": p.start, "quantity": format_micros(p.quantity)}
            for p in series.points
        ],
        "totals": [{"meter": m, "quantity": format_micros(total)} for m, total in series.totals.items()],
    }
