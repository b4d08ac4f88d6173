"""Suite-wide setup: a safe environment before anything imports the app, a guard that fails any
test issuing a DynamoDB Scan, and a log file of the whole run that the last test greps for the
secrets the tests used."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

# Before any platform module is imported: fake credentials, no real endpoint, the test table.
os.environ.update(
    {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_REGION": "us-east-1",
        "PLATFORM_STAGE": "local",
        "PLATFORM_TABLE_NAME": "platform-test",
        "PLATFORM_EVENT_BUS": "platform-test",
        "POWERTOOLS_TRACE_DISABLED": "1",
        "POWERTOOLS_DEV": "0",
    }
)
os.environ.pop("AWS_ENDPOINT_URL", None)
os.environ.pop("AWS_PROFILE", None)

from tests.helpers import ROOT, ScanGuard

# One file per pytest process: `make test` runs two at once (PLATFORM_TEST_LOG names each one's).
LOG_FILE = ROOT / ".test-logs" / os.environ.get("PLATFORM_TEST_LOG", "run.log")

# Every secret a test hands to the platform is added here (see the `secret` fixture); the last test
# of the run fails if any of them reached a log line.
USED_SECRETS: set[str] = set()


def pytest_configure(config: pytest.Config) -> None:
    LOG_FILE.parent.mkdir(exist_ok=True)
    LOG_FILE.write_text("")
    from chalicelib.logs import get_logger

    platform_logger = get_logger()
    handler = logging.FileHandler(LOG_FILE)
    handler.setFormatter(platform_logger.registered_handler.formatter)
    handler.setLevel(logging.DEBUG)
    platform_logger.addHandler(handler)
    # Everything else that logs (chalice, botocore, moto) goes to the same file, unformatted.
    other = logging.FileHandler(LOG_FILE)
    other.setFormatter(logging.Formatter("%(name)s %(levelname)s %(message)s"))
    logging.getLogger().addHandler(other)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    items.sort(key=lambda item: item.get_closest_marker("last") is not None)
    if "e2e" not in (config.option.markexpr or ""):  # real infrastructure only when asked for (-m e2e)
        off = pytest.mark.skip(reason="end-to-end: run with -m e2e")
        for item in items:
            if item.get_closest_marker("e2e"):
                item.add_marker(off)


@pytest.fixture(autouse=True)
def _no_scans() -> Iterator[ScanGuard]:
    with ScanGuard() as guard:
        yield guard
    guard.check()


@pytest.fixture
def secret() -> Any:
    """``secret("value")`` records a secret the test uses, so the log check looks for it."""

    def use(value: str) -> str:
        USED_SECRETS.add(value)
        return value

    return use


@pytest.fixture
def clock() -> Any:
    from datetime import UTC, datetime

    from chalicelib.domain.clock import ManualClock

    return ManualClock(datetime(2026, 11, 27, 12, 0, tzinfo=UTC))


@pytest.fixture
def aws() -> Iterator[dict[str, Any]]:
    """moto in-process with the table and the event bus of infra/resources.json."""
    import boto3
    from moto import mock_aws

    from localcloud.aws import create_table

    with mock_aws():
        dynamodb = boto3.client("dynamodb")
        create_table(dynamodb, os.environ["PLATFORM_TABLE_NAME"])
        events = boto3.client("events")
        events.create_event_bus(Name=os.environ["PLATFORM_EVENT_BUS"])
        yield {"dynamodb": dynamodb, "events": events}


@pytest.fixture
def container(aws: dict[str, Any], clock: Any) -> Iterator[Any]:
    from chalicelib.composition import Container, set_container
    from chalicelib.config import Settings

    c = Container(Settings.from_env(), clock=clock)
    c.bind()
    set_container(c)
    yield c
    set_container(None)


@pytest.fixture
def client(container: Any) -> Iterator[Any]:
    from chalice.test import Client

    from app import app

    with Client(app, stage_name="local") as c:
        yield c


def read_log() -> str:
    return Path(LOG_FILE).read_text() if LOG_FILE.exists() else ""
