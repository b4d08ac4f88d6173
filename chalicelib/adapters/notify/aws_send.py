"""What the SES and SNS notifiers share: a client that makes exactly one attempt, with short
timeouts (botocore retries a read timeout and a dropped connection by itself, which would send an
email or a text twice), built on first use, and the classification of the outcome of a send
(``NotifierPort``): no connection, a throttle or a 5xx -> not sent (``DependencyUnavailableError``);
the service refusing the request -> ``DeliveryRefusedError``; a read timeout or a connection dropped
after sending -> ``DeliveryOutcomeUnknownError``."""

from __future__ import annotations

from collections.abc import Collection, Iterator
from contextlib import contextmanager
from typing import Any

from chalicelib.domain.errors import DeliveryOutcomeUnknownError, DeliveryRefusedError, DependencyUnavailableError

CONNECT_TIMEOUT = 5


def one_attempt_client(service: str, region: str | None, endpoint_url: str | None, read_timeout: int) -> Any:
    import boto3
    from botocore.config import Config

    return boto3.client(
        service,
        region_name=region,
        endpoint_url=endpoint_url,
        config=Config(
            connect_timeout=CONNECT_TIMEOUT,
            read_timeout=read_timeout,
            retries={"mode": "standard", "total_max_attempts": 1},
        ),
    )


@contextmanager
def classified_send(
    provider: str, refused_codes: Collection[str], *, refused: str, failed: str, unanswered: str
) -> Iterator[None]:
    """Turns botocore's errors of the send in the block into the ``NotifierPort``'s: ``refused``,
    ``failed`` and ``unanswered`` are their messages (``provider``: "SES", "SNS")."""
    from botocore.exceptions import (
        ClientError,
        ConnectionClosedError,
        ConnectTimeoutError,
        EndpointConnectionError,
        ReadTimeoutError,
    )

    try:
        yield
    except ClientError as e:
        code = str(e.response.get("Error", {}).get("Code", "ClientError"))
        if code in refused_codes:
            raise DeliveryRefusedError(refused, {"provider_error": code}) from e
        raise DependencyUnavailableError(failed, {"provider_error": code}) from e
    except (EndpointConnectionError, ConnectTimeoutError) as e:
        raise DependencyUnavailableError(
            f"{provider} could not be reached", {"provider_error": type(e).__name__}
        ) from e
    except (ReadTimeoutError, ConnectionClosedError) as e:
        raise DeliveryOutcomeUnknownError(unanswered, {"provider_error": type(e).__name__}) from e
