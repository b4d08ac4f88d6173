"""The composition root: the one place that picks adapters from configuration and wires services.

Everything is built lazily, on first use, so importing a handler costs little (cold starts) and
tests can point the environment at moto before any client exists. ``get_container()`` answers the
process's container; tests install their own with ``set_container``."""

from __future__ import annotations

import threading
from functools import cached_property
from typing import TYPE_CHECKING

from chalicelib.config import Settings
from chalicelib.domain.clock import Clock, SystemClock

if TYPE_CHECKING:
    from chalicelib.adapters.aws.eventbridge import EventBridgeBus
    from chalicelib.adapters.dynamodb.outbox import DynamoOutbox
    from chalicelib.adapters.dynamodb.regions import DynamoRegionRegistry
    from chalicelib.domain.ports import BillingPort, GitHubPort, RuntimePort
    from chalicelib.domain.services.health import HealthService
    from chalicelib.domain.services.outbox_relay import OutboxRelayService
    from chalicelib.domain.services.regions import RegionService


class Container:
    def __init__(self, settings: Settings, clock: Clock | None = None) -> None:
        self.settings = settings
        self.clock: Clock = clock or SystemClock()
        self._bound = False
        self._lock = threading.Lock()

    def bind(self) -> None:
        """Point the table models at this container's table (once)."""
        with self._lock:
            if not self._bound:
                from chalicelib.adapters.dynamodb.base import bind_table

                bind_table(self.settings.table_name, self.settings.region, self.settings.aws_endpoint_url)
                self._bound = True

    # ------------------------------------------------------------------ adapters

    @cached_property
    def event_bus(self) -> EventBridgeBus:
        from chalicelib.adapters.aws.eventbridge import EventBridgeBus

        return EventBridgeBus(
            self.settings.event_bus_name, region=self.settings.region, endpoint_url=self.settings.aws_endpoint_url
        )

    @cached_property
    def outbox(self) -> DynamoOutbox:
        self.bind()
        from chalicelib.adapters.dynamodb.outbox import DynamoOutbox

        return DynamoOutbox(self.clock)

    @cached_property
    def regions(self) -> DynamoRegionRegistry:
        self.bind()
        from chalicelib.adapters.dynamodb.regions import DynamoRegionRegistry

        return DynamoRegionRegistry(self.clock)

    @cached_property
    def runtime(self) -> RuntimePort:
        # The real adapters (the local process runtime, the micro runtime API) come with the deploys issue.
        from chalicelib.adapters.memory.runtime import InMemoryRuntime

        return InMemoryRuntime(self.clock)

    @cached_property
    def billing(self) -> BillingPort:
        # Stripe comes with the billing issue.
        from chalicelib.adapters.memory.billing import InMemoryBilling

        return InMemoryBilling()

    @cached_property
    def github(self) -> GitHubPort:
        # PyGithub against GitHub (or the local stand-in) comes with the accounts issue.
        from chalicelib.adapters.memory.github import InMemoryGitHub

        return InMemoryGitHub()

    # ------------------------------------------------------------------ services

    @cached_property
    def health(self) -> HealthService:
        self.bind()
        from chalicelib.adapters.dynamodb.health import TableHealthCheck
        from chalicelib.domain.services.health import HealthService

        return HealthService(self.settings.version, [TableHealthCheck()])

    @cached_property
    def region_service(self) -> RegionService:
        from chalicelib.domain.services.regions import RegionService

        return RegionService(self.regions)

    @cached_property
    def outbox_relay(self) -> OutboxRelayService:
        from chalicelib.domain.services.outbox_relay import OutboxRelayService

        return OutboxRelayService(self.outbox, self.event_bus)


_container: Container | None = None
_container_lock = threading.Lock()


def get_container() -> Container:
    global _container
    with _container_lock:
        if _container is None:
            _container = Container(Settings.from_env())
        return _container


def set_container(container: Container | None) -> None:
    global _container
    with _container_lock:
        _container = container
