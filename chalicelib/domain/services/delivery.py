"""Delivery: the one way the platform sends an email or a Slack message (reports, alerts), at most
once per delivery key, with every attempt recorded.

``DeliveryService.deliver(namespace, notification)`` does, for the notification's ``key``:

1. **Claim before sending.** The delivery record is created (first attempt) or taken over (a later
   attempt) with a conditional write *before* the notifier is called, with the attempt's number and
   a lease (``LEASE``). Only one caller wins a claim; a step retried after a crash, or the same
   schedule firing twice, finds the record and does not send again.
2. **Send once**, through the channel's notifier (``NotifierPort``: it never retries by itself).
3. **Record the outcome** on the record, conditionally on the attempt it claimed:

   ============  ==============================================================  =================
   status        what is known                                                   ``deliver`` again
   ============  ==============================================================  =================
   ``sent``      the provider accepted it (its message id is kept)               nothing is sent
   ``failed``    surely not delivered (no connection, a throttle, a 5xx)         sends once more,
                                                                                 ``MAX_ATTEMPTS`` in all
   ``refused``   refused for good (unverified sender, revoked webhook, an        nothing is sent
                 address the outbound rules forbid)
   ``unknown``   the request left and no answer came (a read timeout), or an     nothing is sent: it
                 attempt's lease ran out without an outcome (the sender died)    may have arrived
   ``sending``   an attempt holds the lease now                                  nothing is sent
   ============  ==============================================================  =================

   So a delivery is sent at most once, and an unknown outcome is never resent blindly: it stays
   ``unknown`` for a person to judge (the record and its attempts say what happened).

``deliver`` answers the record as it stands; it raises only when the table cannot be written (nothing
was sent then). Callers decide what to do with ``failed`` (``retryable``: a state machine's Retry, a
queue's redelivery) and with ``sending`` (another worker's attempt in flight: retry later).

A Slack webhook URL is a secret: the record keeps ``target`` as the notifier's ``describe`` shows it
(an email address as it is; a webhook's scheme and host, the rest masked), never the URL.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Literal

from chalicelib.domain.clock import Clock
from chalicelib.domain.errors import (
    ConditionFailedError,
    DeliveryOutcomeUnknownError,
    DeliveryRefusedError,
    DependencyUnavailableError,
    ValidationError,
)
from chalicelib.domain.ports import Notification, NotifierPort
from chalicelib.domain.stores import DeliveryLog

DeliveryStatus = Literal["sending", "sent", "failed", "refused", "unknown"]
TERMINAL: tuple[DeliveryStatus, ...] = ("sent", "refused", "unknown")
MAX_ATTEMPTS = 5
# Longer than any notifier's own timeouts (connect + read, a few seconds): an attempt still
# ``sending`` after it has lost its sender, and its outcome is unknown.
LEASE = timedelta(minutes=2)
RETENTION = timedelta(days=90)
KEY = re.compile(r"^[A-Za-z0-9._:-]{1,200}$")
MAX_ERROR = 300
# An address the platform sends email to: one mailbox, no display name, no line breaks (header
# injection) and no spaces. Deliberately plain: what a person types in a settings page.
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
EMAIL = re.compile(rf"^[A-Za-z0-9.!#$%&'*+/=?^_`{{|}}~-]{{1,64}}@{_LABEL}(?:\.{_LABEL})+$")
MAX_EMAIL = 254


def valid_email(address: str) -> bool:
    return len(address) <= MAX_EMAIL and bool(EMAIL.fullmatch(address))


@dataclass(frozen=True)
class Attempt:
    number: int
    started_at: datetime
    outcome: DeliveryStatus  # ``sending`` while it runs
    ended_at: datetime | None = None
    error: str | None = None  # the provider's error code, or what the outbound rules refused
    provider_id: str | None = None


@dataclass(frozen=True)
class Delivery:
    namespace: str
    key: str
    channel: str
    target: str  # shown, never a secret
    status: DeliveryStatus
    attempts: tuple[Attempt, ...]
    created_at: datetime
    updated_at: datetime
    provider_id: str | None = None
    error: str | None = None

    @property
    def retryable(self) -> bool:
        """Surely not delivered yet, with attempts left: sending again is safe."""
        return self.status == "failed" and len(self.attempts) < MAX_ATTEMPTS

    @property
    def lease_expires_at(self) -> datetime | None:
        if self.status != "sending" or not self.attempts:
            return None
        return self.attempts[-1].started_at + LEASE


class DeliveryService:
    def __init__(self, log: DeliveryLog, notifiers: Mapping[str, NotifierPort], clock: Clock) -> None:
        self._log = log
        self._notifiers = notifiers
        self._clock = clock

    def deliver(self, namespace: str, notification: Notification) -> Delivery:
        """Send ``notification`` unless its key was delivered (or may have been) already; answer its
        record. See the module's docstring."""
        if not KEY.match(notification.key):
            raise ValidationError(
                "a notification needs a key of 1-200 characters of [A-Za-z0-9._:-]", {"key": notification.key}
            )
        notifier = self._notifiers.get(notification.channel)
        if notifier is None:
            raise ValidationError(f"no notifier sends {notification.channel!r}", {"channel": notification.channel})
        for _ in range(3):  # a lost claim is re-read once or twice: someone else moved first
            current = self._log.get(namespace, notification.key)
            now = self._clock.now()
            if current is not None:
                if current.status == "sending" and current.lease_expires_at is not None:
                    if current.lease_expires_at > now:
                        return current  # another attempt is in flight
                    lost = self._unknown(current, now, "the attempt's sender stopped before recording an outcome")
                    try:
                        self._log.settle(lost)
                    except ConditionFailedError:
                        continue
                    return lost
                if not current.retryable:
                    return current
            claimed = self._claim(namespace, notification, notifier, current, now)
            if claimed is None:
                continue
            return self._send(notifier, notification, claimed)
        current = self._log.get(namespace, notification.key)
        assert current is not None
        return current

    def get(self, namespace: str, key: str) -> Delivery | None:
        return self._log.get(namespace, key)

    def list(self, namespace: str, limit: int = 50) -> list[Delivery]:
        return self._log.list(namespace, limit)

    # ------------------------------------------------------------------ steps

    def _claim(
        self,
        namespace: str,
        notification: Notification,
        notifier: NotifierPort,
        current: Delivery | None,
        now: datetime,
    ) -> Delivery | None:
        previous = current.attempts if current is not None else ()
        attempt = Attempt(number=len(previous) + 1, started_at=now, outcome="sending")
        claimed = Delivery(
            namespace=namespace,
            key=notification.key,
            channel=notification.channel,
            target=notifier.describe(notification.target),
            status="sending",
            attempts=(*previous, attempt),
            created_at=current.created_at if current is not None else now,
            updated_at=now,
        )
        try:
            self._log.claim(claimed, len(previous))
        except ConditionFailedError:
            return None
        return claimed

    def _send(self, notifier: NotifierPort, notification: Notification, claimed: Delivery) -> Delivery:
        outcome: DeliveryStatus
        provider_id: str | None = None
        error: str | None = None
        try:
            provider_id = notifier.send(notification)
            outcome = "sent"
        except DependencyUnavailableError as e:
            outcome, error = "failed", _error(e)
        except DeliveryRefusedError as e:
            outcome, error = "refused", _error(e)
        except DeliveryOutcomeUnknownError as e:
            outcome, error = "unknown", _error(e)
        except Exception as e:  # a bug, or an error nobody classified: it may have left
            from chalicelib.logs import get_logger

            get_logger().exception("a notifier failed unexpectedly", extra={"channel": notification.channel})
            outcome, error = "unknown", f"internal: {type(e).__name__}"
        settled = self._settle(claimed, outcome, self._clock.now(), provider_id, error)
        self._log.settle(settled)
        return settled

    @staticmethod
    def _settle(
        delivery: Delivery, outcome: DeliveryStatus, now: datetime, provider_id: str | None, error: str | None
    ) -> Delivery:
        last = replace(delivery.attempts[-1], outcome=outcome, ended_at=now, error=error, provider_id=provider_id)
        return replace(
            delivery,
            status=outcome,
            attempts=(*delivery.attempts[:-1], last),
            updated_at=now,
            provider_id=provider_id,
            error=error,
        )

    def _unknown(self, delivery: Delivery, now: datetime, why: str) -> Delivery:
        return self._settle(delivery, "unknown", now, None, why)


def _error(e: Exception) -> str:
    """The provider's error code and message, short (never a target: notifiers keep those out)."""
    message = getattr(e, "message", str(e))
    details = getattr(e, "details", {}) or {}
    code = details.get("provider_error")
    text = f"{code}: {message}" if code else str(message)
    return text[:MAX_ERROR]
