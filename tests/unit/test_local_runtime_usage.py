"""What the local runtime records of usage (``RuntimeUsagePort``): its request-counter checkpoints, kept on
disk before they are answered so that a crash between ingesting one and acknowledging it counts nothing
twice and nothing never, and its instance records. No process is started here (the proxy's counting
per hour runs in tests/functional/test_metering.py)."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from chalicelib.adapters.runtime.local import LocalRuntime
from chalicelib.domain.clock import ManualClock
from chalicelib.domain.ports import InstanceRecord

NS = "acme-backend"


@pytest.fixture
def runtimes() -> Iterator[list[LocalRuntime]]:
    started: list[LocalRuntime] = []
    yield started
    for runtime in started:
        runtime.shutdown()


def counts_file(state: Path, counts: dict[str, object], checkpoints: dict[str, object] | None = None) -> None:
    state.mkdir(parents=True, exist_ok=True)
    data = {"format": 2, "counts": counts, "checkpoints": checkpoints or {}}
    (state / "request_counts.json").write_text(json.dumps(data))


def test_a_checkpoint_is_on_disk_before_it_is_answered_and_survives_a_crash_until_acknowledged(
    tmp_path: Path, runtimes: list[LocalRuntime]
) -> None:
    clock = ManualClock(datetime(2026, 12, 1, 10, 5, tzinfo=UTC))
    state = tmp_path / "runtime"
    counts_file(state, {NS: {"hello": {"2026-12-01T09": 40, "2026-12-01T10": 2}}})
    rt1 = LocalRuntime(clock, state)
    runtimes.append(rt1)
    checkpoint = rt1.checkpoint_requests(NS)
    assert checkpoint is not None
    assert dict(checkpoint.counts) == {("hello", "2026-12-01T09"): 40, ("hello", "2026-12-01T10"): 2}
    assert rt1.request_counts(NS) == {}  # taken: the next checkpoint will not hold them again
    assert rt1.checkpoint_requests(NS) == checkpoint  # answered again until acknowledged

    # the process dies here, after ingesting and before acknowledging: what is on disk is all there is
    crashed = tmp_path / "after-crash"
    shutil.copytree(state, crashed, ignore=shutil.ignore_patterns("runtime.lock", "heartbeat"))
    rt2 = LocalRuntime(clock, crashed)
    runtimes.append(rt2)
    assert rt2.checkpoint_requests(NS) == checkpoint  # the same id: ingesting it again is a duplicate

    rt2.ack_requests(NS, "some-other-id")
    assert rt2.checkpoint_requests(NS) == checkpoint
    rt2.ack_requests(NS, checkpoint.id)
    assert rt2.checkpoint_requests(NS) is None
    saved = json.loads((crashed / "request_counts.json").read_text())
    assert saved["checkpoints"] == {} and saved["format"] == 2


def test_counts_of_the_earlier_format_are_kept_in_the_hour_they_are_loaded(
    tmp_path: Path, runtimes: list[LocalRuntime]
) -> None:
    clock = ManualClock(datetime(2026, 12, 1, 10, 5, tzinfo=UTC))
    state = tmp_path / "runtime"
    state.mkdir()
    (state / "request_counts.json").write_text(json.dumps({NS: {"hello": 7}}))
    runtime = LocalRuntime(clock, state)
    runtimes.append(runtime)
    assert runtime.request_counts(NS) == {"hello": 7}
    checkpoint = runtime.checkpoint_requests(NS)
    assert checkpoint is not None and dict(checkpoint.counts) == {("hello", "2026-12-01T10"): 7}


def test_consuming_counts_takes_the_oldest_hours_first(tmp_path: Path, runtimes: list[LocalRuntime]) -> None:
    state = tmp_path / "runtime"
    counts_file(state, {NS: {"hello": {"2026-12-01T09": 3, "2026-12-01T10": 2}}})
    runtime = LocalRuntime(ManualClock(), state)
    runtimes.append(runtime)
    runtime.consume_request_counts(NS, {"hello": 4})
    assert runtime.request_counts(NS) == {"hello": 1}
    checkpoint = runtime.checkpoint_requests(NS)
    assert checkpoint is not None and dict(checkpoint.counts) == {("hello", "2026-12-01T10"): 1}


def test_instance_records_are_read_from_the_start_and_stop_records(
    tmp_path: Path, runtimes: list[LocalRuntime]
) -> None:
    state = tmp_path / "runtime"
    state.mkdir()
    base = {"namespace": NS, "service": "hello", "version": "v1", "deployment_id": "d", "exit_code": None}
    lines = [
        {**base, "event": "start", "instance_id": "i1", "started_at": "2026-12-01T08:00:00+00:00", "stopped_at": None},
        {**base, "event": "start", "instance_id": "i2", "started_at": "2026-12-01T09:30:00+00:00", "stopped_at": None},
        {**base, "event": "stop", "instance_id": "i1", "started_at": "2026-12-01T08:00:00+00:00",
         "stopped_at": "2026-12-01T08:45:00+00:00", "exit_reason": "deleted"},
        {**base, "event": "start", "instance_id": "i3", "namespace": "other",
         "started_at": "2026-12-01T09:00:00+00:00"},
    ]  # fmt: skip
    runtime = LocalRuntime(ManualClock(), state)
    runtimes.append(runtime)
    # written while this runtime owns the directory (one written before would be an earlier run's, closed
    # at start as a crash's leftover)
    (state / "instances.jsonl").write_text("".join(json.dumps(line) + "\n" for line in lines))
    at = datetime.fromisoformat
    assert runtime.instance_records(NS, at("2026-12-01T08:00:00+00:00")) == [
        InstanceRecord("i1", "hello", at("2026-12-01T08:00:00+00:00"), at("2026-12-01T08:45:00+00:00")),
        InstanceRecord("i2", "hello", at("2026-12-01T09:30:00+00:00"), None),
    ]
    assert [r.instance_id for r in runtime.instance_records(NS, at("2026-12-01T09:00:00+00:00"))] == ["i2"]
