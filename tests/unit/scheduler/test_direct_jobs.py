"""Direct jobs: run now on a direct transcriber, their caller served in-process; overflow to the
high queue; a caller that goes away; waiting for a slot; draining."""

from __future__ import annotations

import asyncio

import grpc
import pytest

from sayit.common.v1 import job_pb2
from sayit.common.v1 import transcription_pb2 as tpb
from services.common.effective_config import effective_config
from tests.unit.scheduler.conftest import Harness, until

QUEUED, RUNNING = job_pb2.JOB_STATE_QUEUED, job_pb2.JOB_STATE_RUNNING
SUCCEEDED, FAILED, CANCELLED = (
    job_pb2.JOB_STATE_SUCCEEDED,
    job_pb2.JOB_STATE_FAILED,
    job_pb2.JOB_STATE_CANCELLED,
)


def xreads(h: Harness) -> int:
    stats = h.redis.info("commandstats")
    return int(stats.get("cmdstat_xread", {}).get("calls", 0))  # type: ignore[union-attr]


async def test_a_short_job_runs_direct_and_its_waiting_caller_is_served_in_process(
    harness: Harness,
) -> None:
    before = xreads(harness)
    job = await harness.submit(wait=True)
    assert (job.state, job.routing) == (SUCCEEDED, job_pb2.ROUTING_DIRECT)
    assert job.transcript.text == "안녕하세요. 반갑습니다."
    # The caller waited on the job's task in this process, not on its event stream in Redis.
    assert xreads(harness) == before
    # The transcriber got the effective config as it came, and the job's id.
    (call,) = harness.fake.calls
    assert call.config == effective_config(tpb.TranscriptionConfig(language_code="ko"), "base")
    assert call.job_id == job.name.removeprefix("jobs/")
    # Redis recorded it all for anyone watching.
    kinds = await harness.events(job.name)
    assert kinds[0] == "accepted" and kinds[-1] == "completed"
    assert kinds.count("segment") == 2 and "progress" in kinds


async def test_a_transcriber_with_no_free_slot_sends_the_job_to_the_high_queue(
    harness: Harness,
) -> None:
    harness.fake.script.refuse = (grpc.StatusCode.RESOURCE_EXHAUSTED, "every slot is busy")
    job = await harness.submit()
    assert job.routing == job_pb2.ROUTING_DIRECT
    await until(lambda: not harness.scheduler.direct.tasks)
    record = harness.record(job.name)
    assert record[b"state"] == b"QUEUED" and record[b"routing"] == b"QUEUED"
    assert record[b"queue"] == b"sayit-high" and record[b"chunks_total"] == b"1"
    job_id = job.name.removeprefix("jobs/")
    # Its audio waits as its one chunk, and that chunk is on the high queue.
    assert harness.redis.get(harness.keys.chunk_audio(job_id, 0)) == b"fake audio"
    assert harness.redis.lrange("rq:queue:sayit-high", 0, -1) == [f"{job_id}-0".encode()]
    assert (await harness.get(job.name)).state == QUEUED


async def test_a_transcriber_error_fails_the_job_with_its_code_and_message(
    harness: Harness,
) -> None:
    harness.fake.script.refuse = (grpc.StatusCode.INVALID_ARGUMENT, "could not decode audio")
    job = await harness.submit(wait=True)
    assert job.state == FAILED
    assert job.error.code == grpc.StatusCode.INVALID_ARGUMENT.value[0]
    assert job.error.message == "could not decode audio"
    assert (await harness.events(job.name))[-1] == "failed"


async def test_a_caller_that_goes_away_cancels_its_job_and_the_transcription(
    harness: Harness,
) -> None:
    harness.fake.script.release = asyncio.Event()  # never set: the transcription never ends
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await harness.submit(wait=True, deadline_seconds=0.5)
    assert raised.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    job_id = harness.fake.calls[0].job_id
    await until(lambda: harness.record(job_id)[b"state"] == b"CANCELLED")
    await until(lambda: harness.fake.cancelled == 1)
    assert (await harness.events(job_id))[-1] == "cancelled"


async def test_short_jobs_wait_in_line_for_the_slot_and_run_in_turn(harness: Harness) -> None:
    harness.scheduler.direct.slots.max_wait_seconds = 5.0
    release = asyncio.Event()
    harness.fake.script.release = release
    first = asyncio.create_task(harness.submit(b"first", wait=True))
    await harness.fake.started.wait()
    second = asyncio.create_task(harness.submit(b"second", wait=True))
    await until(lambda: harness.scheduler.direct.slots.waiting == 1)
    waiting = await harness.get(harness.fake.calls[0].job_id)
    assert waiting.state == RUNNING
    release.set()
    done = await asyncio.gather(first, second)
    assert [j.state for j in done] == [SUCCEEDED, SUCCEEDED]
    assert [c.audio.content for c in harness.fake.calls] == [b"first", b"second"]
    assert all(j.routing == job_pb2.ROUTING_DIRECT for j in done)


async def test_a_wait_for_a_slot_that_runs_out_goes_to_the_high_queue(harness: Harness) -> None:
    slots = harness.scheduler.direct.slots
    slots.max_wait_seconds, slots.rtf = 0.2, 0.001  # worth waiting, but not long enough
    harness.fake.script.release = asyncio.Event()
    await harness.submit(b"first")
    await harness.fake.started.wait()
    second = await harness.submit(b"second")
    assert second.state == QUEUED and second.routing == job_pb2.ROUTING_DIRECT
    await until(lambda: harness.record(second.name)[b"routing"] == b"QUEUED")
    assert harness.record(second.name)[b"queue"] == b"sayit-high"
    assert len(harness.fake.calls) == 1  # it never reached the transcriber


async def test_draining_fails_direct_jobs_that_outlive_the_grace_period(harness: Harness) -> None:
    harness.fake.script.release = asyncio.Event()
    job = await harness.submit()
    await harness.fake.started.wait()
    await harness.scheduler.direct.drain(0.1)
    final = await harness.get(job.name)
    assert final.state == FAILED
    assert final.error.code == grpc.StatusCode.UNAVAILABLE.value[0]
    assert "shut down before the job finished" in final.error.message
