"""Webhook endpoints: verified on the raw body, claimed, handed to a queue, answered fast."""

from __future__ import annotations

from chalice.app import Blueprint, Response

from chalicelib.api.registry import Call, registry
from chalicelib.composition import get_container
from chalicelib.domain.errors import BadRequestError, DependencyUnavailableError, UnauthenticatedError

bp = Blueprint(__name__)
S = "chalicelib.api.schemas.accounts"


@registry.route(
    bp,
    "/v1/webhooks/github",
    "POST",
    tag="webhooks",
    status=202,
    response=f"{S}:WebhookOut",
    errors=(UnauthenticatedError, BadRequestError, DependencyUnavailableError),
    summary="The GitHub App's webhook: 200 ping or duplicate, 202 enqueued or ignored, 401 bad signature",
)
def github_webhook(call: Call) -> Response:
    import json

    receipt = get_container().github_webhooks.receive(dict(call.request.headers or {}), call.request.raw_body or b"")
    return Response(
        body=json.dumps(receipt.body), status_code=receipt.status, headers={"Content-Type": "application/json"}
    )


@registry.route(
    bp,
    "/v1/webhooks/stripe",
    "POST",
    tag="webhooks",
    status=200,
    response=f"{S}:WebhookOut",
    errors=(BadRequestError, DependencyUnavailableError),
    summary="Stripe's webhook: 200 enqueued, duplicate or ignored; 400 a bad or old Stripe-Signature",
)
def stripe_webhook(call: Call) -> Response:
    import json

    receipt = get_container().stripe_webhooks.receive(dict(call.request.headers or {}), call.request.raw_body or b"")
    return Response(
        body=json.dumps(receipt.body), status_code=receipt.status, headers={"Content-Type": "application/json"}
    )
