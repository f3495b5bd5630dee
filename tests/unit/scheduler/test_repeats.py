"""Repeats: the result cache, sharing a job in flight and idempotency keys, never across
tenants."""

from __future__ import annotations

import asyncio

import grpc
import pytest

from sayit.common.v1 import job_pb2
from tests.unit.scheduler.conftest import Harness, until


@pytest.fixture
def settings(settings: dict[str, str]) -> dict[str, str]:
    return {**settings, "SAYIT_RESULT_CACHE_TTL_SECONDS": "3600"}


async def test_a_finished_transcript_is_served_again_from_the_cache(harness: Harness) -> None:
    first = await harness.submit(wait=True)
    assert not first.transcript.from_cache
    again = await harness.submit(wait=True)
    assert again.name != first.name and again.state == job_pb2.JOB_STATE_SUCCEEDED
    assert again.transcript.from_cache and again.transcript.text == first.transcript.text
    assert await harness.events(again.name) == ["accepted", "completed"]
    assert len(harness.fake.calls) == 1
    # Other audio, or another tenant, is transcribed anew.
    other = await harness.submit(b"other audio", wait=True)
    elsewhere = await harness.submit(wait=True, tenant="globex")
    assert not other.transcript.from_cache and not elsewhere.transcript.from_cache
    assert len(harness.fake.calls) == 3


async def test_identical_submissions_in_flight_share_one_job(harness: Harness) -> None:
    release = asyncio.Event()
    harness.fake.script.release = release
    first = await harness.submit()
    await harness.fake.started.wait()
    second = await harness.submit()
    assert second.name == first.name
    assert harness.record(first.name)[b"attached"] == b"1"
    release.set()
    await until(lambda: harness.record(first.name)[b"state"] == b"SUCCEEDED")
    assert len(harness.fake.calls) == 1


async def test_an_idempotency_key_names_one_job_for_one_request(harness: Harness) -> None:
    first = await harness.submit(idempotency_key="order-17", queue=True)
    assert (await harness.submit(idempotency_key="order-17", queue=True)).name == first.name
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await harness.submit(b"other audio", idempotency_key="order-17", queue=True)
    assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "idempotency_key was already used for a different request" in raised.value.details()
    other = await harness.submit(idempotency_key="order-17", queue=True, tenant="globex")
    assert other.name != first.name
