"""The webhook side of the ``NotifierPort``: a JSON body POSTed to the user's https address, signed as
the Standard Webhooks specification says (https://www.standardwebhooks.com, "Signature scheme"),
with the ``standardwebhooks`` package (pinned) rather than our own code:

- ``webhook-id``: the message's id, the same for every attempt of one delivery (``msg_`` and a digest
  of its delivery key), so a receiver deduplicates a resend;
- ``webhook-timestamp``: integer Unix seconds when it was signed (receivers refuse it five minutes
  off their clock: this is the real time, not the local stage's movable clock);
- ``webhook-signature``: ``v1,<base64 HMAC-SHA256 of "<id>.<timestamp>.<body>">``, one per live secret,
  space-separated (two while a rotated secret's overlap runs).

The request goes over the outbound rules (``outbound.py``): https only (the local stage may post to
loopback over http), every address the host resolves to public and the connection made to one of
them, no redirects followed (a 3xx is refused), no proxy, a short timeout and a capped read.

Outcomes (``NotifierPort``): 2xx delivered; 5xx, 408 and 429 not taken (``DependencyUnavailableError``:
sent again after a backoff); any other 4xx and a 3xx refused for good (``DeliveryRefusedError``: never
retried). A request that left without an answer (a read timeout, a reset) is safe to send again here,
unlike an email: the receiver deduplicates on ``webhook-id`` (the specification's idempotency rule),
so it is ``DependencyUnavailableError`` too.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from urllib.error import HTTPError, URLError
from urllib.parse import urlsplit
from urllib.request import Request

from chalicelib.adapters.notify.outbound import CONNECT_TIMEOUT, OutboundPolicy, OutboundRefusedError, read_capped
from chalicelib.domain.clock import Clock, SystemClock
from chalicelib.domain.errors import DeliveryRefusedError, DependencyUnavailableError, ValidationError
from chalicelib.domain.ports import Notification
from chalicelib.domain.redaction import register_secret

RETRYABLE_4XX = (408, 429)
USER_AGENT = "micro-platform-webhooks/1"


def message_id(key: str) -> str:
    """``msg_`` and 26 hex digits of the delivery key's digest: the same for every attempt."""
    return "msg_" + hashlib.sha256(key.encode()).hexdigest()[:26]


def sign(secrets: tuple[str, ...], msg_id: str, at: datetime, body: str) -> str:
    """The ``webhook-signature`` header: ``v1,<sig>`` per secret, space-separated."""
    from standardwebhooks.webhooks import Webhook  # on first use: cold starts

    return " ".join(Webhook(s).sign(msg_id, at, body) for s in secrets)


class SignedWebhookNotifier:
    def __init__(
        self, policy: OutboundPolicy | None = None, timeout: float = CONNECT_TIMEOUT, clock: Clock | None = None
    ) -> None:
        self._policy = policy or OutboundPolicy()
        self._timeout = timeout
        self._clock = clock or SystemClock()  # the receiver's clock is a real one

    def describe(self, target: str) -> str:
        """The URL without its query (which may carry a token of the receiver's)."""
        try:
            parts = urlsplit(target)
        except ValueError:
            return "?"
        return f"{parts.scheme}://{parts.netloc}{parts.path}"

    def send(self, notification: Notification) -> str:
        if notification.channel != "webhook":
            raise ValidationError("the webhook notifier sends webhooks only", {"channel": notification.channel})
        if not notification.signing_secrets:
            raise DeliveryRefusedError("the channel has no signing secret", {"provider_error": "no_secret"})
        for s in notification.signing_secrets:
            register_secret(s)
        try:
            self._policy.check_url(notification.target)
        except OutboundRefusedError as e:
            raise DeliveryRefusedError(f"the webhook URL is refused: {e}", {"provider_error": "address_refused"}) from e
        msg_id = message_id(notification.key or notification.text)
        at = self._clock.now().astimezone(UTC).replace(microsecond=0)
        body = notification.text
        headers = {
            "Content-Type": "application/json",
            "User-Agent": USER_AGENT,
            "webhook-id": msg_id,
            "webhook-timestamp": str(int(at.timestamp())),
            "webhook-signature": sign(notification.signing_secrets, msg_id, at, body),
        }
        # the URL's scheme was checked above (https; http only in the local stage)
        request = Request(notification.target, data=body.encode(), headers=headers, method="POST")  # noqa: S310
        try:
            with self._policy.opener().open(request, timeout=self._timeout) as answer:
                read_capped(answer)
                status = int(answer.status)
        except OutboundRefusedError as e:
            raise DeliveryRefusedError(f"the webhook URL is refused: {e}", {"provider_error": "address_refused"}) from e
        except HTTPError as e:
            read_capped(e)
            status = int(e.code)
        except URLError as e:
            raise DependencyUnavailableError(
                "the webhook's address could not be reached", {"provider_error": type(e.reason).__name__}
            ) from e
        except OSError as e:  # a timeout or a reset after sending: the receiver deduplicates on webhook-id
            raise DependencyUnavailableError(
                "the webhook's address did not answer in time", {"provider_error": type(e).__name__}
            ) from e
        if 200 <= status < 300:
            return msg_id
        if status >= 500 or status in RETRYABLE_4XX:
            raise DependencyUnavailableError(f"the receiver answered {status}", {"provider_error": f"http_{status}"})
        if 300 <= status < 400:
            raise DeliveryRefusedError(
                f"the receiver answered {status}: redirects are not followed", {"provider_error": f"redirect_{status}"}
            )
        raise DeliveryRefusedError(f"the receiver refused the message ({status})", {"provider_error": f"http_{status}"})
