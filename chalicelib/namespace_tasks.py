"""What the onboarding and offboarding state machines' tasks share: a function handler that takes
``{"namespace": id, ...}``, calls one NamespaceService step with the namespace, and passes the input on."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from chalicelib.composition import get_container
from chalicelib.logs import lambda_handler

if TYPE_CHECKING:
    from chalicelib.domain.services.namespaces import NamespaceService


def namespace_task(
    name: str, step: Callable[[NamespaceService, dict[str, Any]], object]
) -> Callable[[dict[str, Any], Any], dict[str, Any]]:
    """The handler ``name`` (as infra/resources.json declares it): ``step(service, event)``, then the event."""

    def task(event: dict[str, Any], context: Any) -> dict[str, Any]:
        step(get_container().namespaces, event)
        return event

    task.__name__ = task.__qualname__ = name
    handler: Callable[[dict[str, Any], Any], dict[str, Any]] = lambda_handler(task)
    return handler
