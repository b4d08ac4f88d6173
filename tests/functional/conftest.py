"""Functional tests: real servers on loopback (the local cloud, the stand-ins, the front end)."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest


@pytest.fixture(scope="module")
def env_restored() -> Iterator[None]:
    """The local cloud points the process's environment at itself; put it back afterwards."""
    saved = dict(os.environ)
    yield
    os.environ.clear()
    os.environ.update(saved)
