"""The Slack side of the ``NotifierPort``: incoming webhooks through slack_sdk's ``WebhookClient``
(pinned), over the outbound rules of ``outbound.py``.

slack_sdk builds the request (Block Kit payload, headers); the transport is ours: the client's
``_perform_http_request_internal`` is replaced by one that uses the checked opener (public addresses
only, no redirects, no proxy, a short timeout, a capped read), and its retry handlers are turned off
(``retry_handlers=[]``: slack_sdk's default retries a connection reset, which may come after Slack
took the message). Pinned to slack_sdk 3.47.0, whose ``WebhookClient`` calls that method for the one
request it makes (``slack_sdk/webhook/client.py``).

Slack's answers (https://docs.slack.dev/messaging/sending-messages-using-incoming-webhooks, "Handling
errors"): 200 ``ok``; 400 ``invalid_payload``/``no_text``..., 403 ``action_prohibited``, 404
``no_service``/``channel_not_found``, 410 ``channel_is_archived``: refused for good; 429 and 5xx: not
taken, send again later.
"""

from __future__ import annotations

import hashlib
import logging
from email.message import Message
from typing import Any
from urllib.error import HTTPError, URLError
from urllib.parse import urlsplit
from urllib.request import Request

from chalicelib.adapters.notify.outbound import (
    CONNECT_TIMEOUT,
    MAX_RESPONSE_BYTES,
    OutboundPolicy,
    OutboundRefusedError,
    read_capped,
)
from chalicelib.domain.errors import (
    DeliveryOutcomeUnknownError,
    DeliveryRefusedError,
    DependencyUnavailableError,
    ValidationError,
)
from chalicelib.domain.ports import Notification
from chalicelib.domain.redaction import MASK, register_secret

MAX_BLOCKS = 50  # Block Kit's limit for a message


def describe_webhook(url: str) -> str:
    """A webhook URL as it may be shown: its scheme and host, the path (the credential) masked."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or "?"
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        return MASK
    return f"{parts.scheme}://{host}{port}/{MASK}"


class SlackWebhookNotifier:
    def __init__(
        self, policy: OutboundPolicy | None = None, timeout: float = CONNECT_TIMEOUT, hosts: tuple[str, ...] = ()
    ) -> None:
        self._policy = policy or OutboundPolicy()
        self._timeout = timeout
        self._hosts = tuple(h.lower() for h in hosts)  # when set, the only hosts posted to (Slack's, outside local)

    def describe(self, target: str) -> str:
        return describe_webhook(target)

    def check(self, url: str) -> None:
        """ValidationError when the outbound rules would refuse the URL (checked when it is saved)."""
        try:
            self._policy.check_url(url)
        except OutboundRefusedError as e:
            raise ValidationError(str(e), {"field": "webhook_url"}) from e

    def send(self, notification: Notification) -> str:
        if notification.channel != "slack":
            raise ValidationError("the Slack notifier sends Slack messages only", {"channel": notification.channel})
        register_secret(notification.target)  # its path is its credential: never in a log line
        try:
            _, host, _ = self._policy.check_url(notification.target)
        except OutboundRefusedError as e:
            raise DeliveryRefusedError(f"the webhook URL is refused: {e}", {"provider_error": "address_refused"}) from e
        if self._hosts and host.rstrip(".").lower() not in self._hosts:
            raise DeliveryRefusedError(
                f"the webhook URL is refused: not Slack's webhook host ({', '.join(self._hosts)})",
                {"provider_error": "address_refused"},
            )
        client = _CheckedWebhookClient(notification.target, self._policy, self._timeout)
        payload: dict[str, Any] = {"text": notification.text}
        if notification.blocks:
            payload["blocks"] = list(notification.blocks[:MAX_BLOCKS])
        try:
            response = client.send_dict(payload)
        except OutboundRefusedError as e:
            raise DeliveryRefusedError(f"the webhook URL is refused: {e}", {"provider_error": "address_refused"}) from e
        except URLError as e:  # before or while sending the request: Slack never had the whole of it
            raise DependencyUnavailableError(
                "Slack could not be reached", {"provider_error": type(e.reason).__name__}
            ) from e
        except OSError as e:  # a timeout, a reset: after sending, so unknown
            raise DeliveryOutcomeUnknownError(
                "Slack did not answer after the message was sent", {"provider_error": type(e).__name__}
            ) from e
        status, body = response.status_code, (response.body or "")[:200]
        if status == 200:
            return "slack:" + hashlib.sha256(repr(sorted(payload.items())).encode()).hexdigest()[:16]
        if status == 429 or status >= 500:
            raise DependencyUnavailableError(f"Slack answered {status}", {"provider_error": body or str(status)})
        if 300 <= status < 400:
            raise DeliveryRefusedError(
                f"Slack answered {status}: redirects are not followed", {"provider_error": f"redirect_{status}"}
            )
        raise DeliveryRefusedError(f"Slack refused the message ({status})", {"provider_error": body or str(status)})


def _webhook_client_class() -> Any:
    from slack_sdk.webhook import WebhookClient  # imported on first use (cold starts)
    from slack_sdk.webhook.webhook_response import WebhookResponse

    class CheckedWebhookClient(WebhookClient):  # type: ignore[misc]
        policy: OutboundPolicy

        def _perform_http_request_internal(self, url: str, req: Request) -> WebhookResponse:
            try:
                answer = self.policy.opener().open(req, timeout=self.timeout)
            except HTTPError as e:  # a non-2xx answer: read capped, never raised to slack_sdk
                body = read_capped(e)
                headers = dict(e.headers.items())
                return WebhookResponse(url=url, status_code=e.code, body=_text(body, e.headers), headers=headers)
            body = read_capped(answer, MAX_RESPONSE_BYTES)
            headers = dict(answer.headers.items())
            return WebhookResponse(
                url=url, status_code=answer.status, body=_text(body, answer.headers), headers=headers
            )

    return CheckedWebhookClient


_client_class: Any = None
_QUIET = logging.getLogger("chalicelib.notify.slack_sdk")
_QUIET.setLevel(logging.CRITICAL)
_QUIET.propagate = False


def _CheckedWebhookClient(url: str, policy: OutboundPolicy, timeout: float) -> Any:
    global _client_class
    if _client_class is None:
        _client_class = _webhook_client_class()
    client = _client_class(url, timeout=timeout, retry_handlers=[])
    client.policy = policy
    client.logger = _QUIET  # slack_sdk logs the URL (a credential) at debug level: not here
    return client


def _text(body: bytes, headers: Message | None) -> str:
    charset = (headers.get_content_charset() if headers is not None else None) or "utf-8"
    return body.decode(charset, errors="replace")
