"""The event envelope, and the documents that must cover every event type and entity."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest

from chalicelib.adapters.dynamodb.base import BaseItem
from chalicelib.domain.errors import ValidationError
from chalicelib.domain.events import EVENT_TYPES, Event
from tests.helpers import ROOT

NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)


def test_the_envelope_has_exactly_the_documented_fields_and_round_trips() -> None:
    event = Event.create("namespace.created", "ns-1", NOW, {"region": "local"})
    d = event.to_dict()
    assert list(d) == ["id", "type", "version", "namespace", "occurred_at", "data"]
    assert d["version"] == 1 and d["occurred_at"] == "2026-11-27T12:00:00+00:00"
    assert Event.from_dict(d) == event


def test_event_ids_are_time_ordered() -> None:
    a = Event.create("token.created", "ns", NOW, {})
    b = Event.create("token.created", "ns", NOW.replace(minute=1), {})
    assert a.id < b.id and len(a.id) == 26


def test_an_unknown_type_or_a_naive_time_is_refused() -> None:
    with pytest.raises(ValidationError):
        Event.create("namespace.exploded", "ns", NOW, {})
    with pytest.raises(ValidationError):
        Event.create("namespace.created", "ns", datetime(2026, 1, 1), {})
    with pytest.raises(ValidationError):
        Event.from_dict({"type": "x"})


def documented_event_types() -> list[str]:
    text = (ROOT / "docs" / "events.md").read_text()
    return re.findall(r"^\|\s*`([a-z_]+\.[a-z_]+)`\s*\|", text, flags=re.MULTILINE)


def test_docs_events_lists_every_event_type_once_and_nothing_else() -> None:
    documented = documented_event_types()
    assert len(documented) == len(set(documented)), "a type is listed twice"
    assert set(documented) == set(EVENT_TYPES)


def all_entities() -> set[str]:
    """Every item class of the table's adapters (each module imported, whatever ran before)."""
    import importlib
    import pkgutil

    import chalicelib.adapters.dynamodb as package

    for module in pkgutil.iter_modules(package.__path__):
        importlib.import_module(f"{package.__name__}.{module.name}")
    discriminator = BaseItem._get_discriminator_attribute()
    found: set[str] = set()
    stack = list(BaseItem.__subclasses__())
    while stack:
        cls = stack.pop()
        stack.extend(cls.__subclasses__())
        if cls.__module__.startswith("chalicelib."):
            found.add(str(discriminator.get_discriminator(cls)))
    assert found, "no entities found"
    return found


def test_docs_data_model_charts_every_entity_the_code_stores() -> None:
    text = (ROOT / "docs" / "data-model.md").read_text()
    for entity in all_entities():
        assert re.search(rf"`{entity}`", text), f"docs/data-model.md does not chart the entity {entity}"
