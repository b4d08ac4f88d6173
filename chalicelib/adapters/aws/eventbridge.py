"""The ``EventBus`` port over EventBridge: source ``platform``, detail-type = event type, detail = the
envelope."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from chalicelib.domain.events import EVENT_SOURCE, Event

MAX_BATCH = 10  # PutEvents takes at most 10 entries


class EventBridgeBus:
    def __init__(
        self, bus_name: str, client: Any = None, *, region: str | None = None, endpoint_url: str | None = None
    ):
        self._bus_name = bus_name
        self._client = client
        self._region = region
        self._endpoint_url = endpoint_url

    @property
    def client(self) -> Any:
        if self._client is None:
            import boto3

            self._client = boto3.client("events", region_name=self._region, endpoint_url=self._endpoint_url)
        return self._client

    def publish(self, events: Sequence[Event]) -> list[str]:
        failed: list[str] = []
        for start in range(0, len(events), MAX_BATCH):
            batch = events[start : start + MAX_BATCH]
            answer = self.client.put_events(
                Entries=[
                    {
                        "Source": EVENT_SOURCE,
                        "DetailType": e.type,
                        "Detail": e.to_json(),
                        "EventBusName": self._bus_name,
                        "Time": e.occurred_at,
                    }
                    for e in batch
                ]
            )
            for event, entry in zip(batch, answer.get("Entries", []), strict=False):
                if entry.get("ErrorCode"):
                    failed.append(event.id)
        return failed
