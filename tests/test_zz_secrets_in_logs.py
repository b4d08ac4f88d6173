"""Runs after every other test (marker ``last``): no secret a test handed to the platform appears
in the log of the whole run (the platform's JSON lines and every other library's)."""

from __future__ import annotations

import pytest

from tests.conftest import LOG_FILE, USED_SECRETS


@pytest.mark.last
def test_no_secret_used_by_the_suite_reached_the_logs() -> None:
    text = LOG_FILE.read_text()
    assert text, "the run wrote no log at all: the log capture is broken"
    leaked = sorted(s for s in USED_SECRETS if s in text)
    assert not leaked, f"{len(leaked)} secret(s) reached the logs (first characters: {[s[:4] for s in leaked]})"
