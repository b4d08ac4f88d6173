"""Relays pending outbox events to the bus. At least once: an event whose publish failed stays
pending and goes out on the next run; consumers deduplicate on the envelope's id."""

from __future__ import annotations

from dataclasses import dataclass

from chalicelib.domain.ports import EventBus, Outbox


@dataclass(frozen=True)
class RelayResult:
    published: int
    failed: int


class OutboxRelayService:
    def __init__(self, outbox: Outbox, bus: EventBus, batch_size: int = 100) -> None:
        self._outbox = outbox
        self._bus = bus
        self._batch_size = batch_size

    def relay(self, max_batches: int = 10) -> RelayResult:
        published = failed = 0
        for _ in range(max_batches):
            events = self._outbox.pending(self._batch_size)
            if not events:
                break
            failed_ids = set(self._bus.publish(events))
            sent = [e.id for e in events if e.id not in failed_ids]
            self._outbox.mark_sent(sent)
            published += len(sent)
            failed += len(failed_ids)
            if failed_ids or len(events) < self._batch_size:
                break
        return RelayResult(published, failed)
