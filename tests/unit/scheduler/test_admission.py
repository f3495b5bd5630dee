"""Admission: long audio and jobs asked to queue go to the queue, short audio runs direct; a
queue whose estimated wait is too long refuses new work with a retry hint, direct work never."""

from __future__ import annotations

import json

import grpc
import pytest
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from sayit.common.v1 import job_pb2
from tests.unit.scheduler.conftest import Harness


async def test_long_audio_goes_to_the_default_queue(harness: Harness) -> None:
    job = await harness.submit(seconds=45.0)  # over SAYIT_SYNC_MAX_SECONDS
    assert (job.state, job.routing) == (job_pb2.JOB_STATE_QUEUED, job_pb2.ROUTING_QUEUED)
    assert harness.record(job.name)[b"queue"] == b"sayit-default"
    events = harness.redis.xrange(harness.keys.events(job.name.removeprefix("jobs/")))
    assert len(events) == 1  # accepted, and nothing else until a worker takes it
    assert harness.fake.calls == []


async def test_short_audio_asked_to_queue_goes_to_the_high_queue(harness: Harness) -> None:
    job = await harness.submit(queue=True)
    assert job.routing == job_pb2.ROUTING_QUEUED
    assert harness.record(job.name)[b"queue"] == b"sayit-high"
    job_id = job.name.removeprefix("jobs/")
    assert harness.redis.lrange("rq:queue:sayit-high", 0, -1) == [f"{job_id}-0".encode()]


@pytest.fixture
def settings(settings: dict[str, str]) -> dict[str, str]:
    return {**settings, "SAYIT_MAX_QUEUE_WAIT_SECONDS": "60", "SAYIT_QUEUE_DEFAULT_RTF": "0.5"}


async def test_a_full_queue_refuses_new_queued_work_but_not_direct_work(harness: Harness) -> None:
    # 400 s of audio waiting for one worker at 0.5 s per audio second: 200 s > 60 s allowed.
    for n in range(4):
        harness.redis.rpush("rq:queue:sayit-default", f"waiting-{n}")
        harness.redis.hset(f"rq:job:waiting-{n}", "meta", json.dumps({"audio_seconds": 100.0}))
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await harness.submit(seconds=45.0)
    error = raised.value
    assert error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert error.details().startswith("the transcription queue is full: about 3 min of work")
    status = rpc_status.from_call(error)  # type: ignore[arg-type]
    assert status is not None
    retry = error_details_pb2.RetryInfo()
    assert any(detail.Unpack(retry) for detail in status.details)
    assert retry.retry_delay.seconds == 140
    assert harness.redis.llen("rq:queue:sayit-default") == 4  # nothing was added
    # Short audio running direct does not wait in the queue: it is not refused.
    assert (await harness.submit(wait=True)).state == job_pb2.JOB_STATE_SUCCEEDED
