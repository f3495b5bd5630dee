"""services.jobs.errors: a Redis that cannot be reached is UNAVAILABLE with a message that names
no endpoint and a retry hint; Redis's own words go to the log."""

from __future__ import annotations

import socket

import pytest
import redis.exceptions
from structlog.testing import capture_logs

from services.common.errors import Unavailable
from services.common.redis_client import FAIL_FAST, async_client
from services.jobs.errors import redis_errors
from tests.support.addresses import leaks


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def test_an_unreachable_redis_is_unavailable_without_its_endpoint() -> None:
    port = closed_port()
    client = async_client(f"redis://127.0.0.1:{port}/0", patience=FAIL_FAST, socket_timeout=1)
    with capture_logs() as logged, pytest.raises(Unavailable) as raised, redis_errors():
        await client.get("anything")
    await client.aclose()
    assert raised.value.message == "the job store is unavailable; retry in a few seconds"
    assert raised.value.retry_after_seconds == 2.0
    assert leaks(raised.value.message) == []
    [line] = [e for e in logged if e["event"] == "job_store_unavailable"]
    assert str(port) in line["error"]  # the operator still reads where it tried


async def test_a_loading_redis_asks_for_a_longer_wait() -> None:
    with pytest.raises(Unavailable) as raised, redis_errors():
        raise redis.exceptions.BusyLoadingError("Redis is loading the dataset in memory")
    assert raised.value.message == "the job store is loading its data; retry in a few seconds"
    assert raised.value.retry_after_seconds == 5.0
