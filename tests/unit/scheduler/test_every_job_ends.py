"""Every job ends: a direct job whose last write hit a Redis failure is failed by its own
scheduler's reconciler once Redis is back (and its watchers' streams end with that event), and
a job past its processing budget is failed DEADLINE_EXCEEDED, whatever its routing.

The real scheduler over real gRPC, on a private Redis this module stops and starts, in front of
the fake transcriber."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import grpc
import pytest

from devsupport.mesh import RedisServer
from sayit.common.v1 import event_pb2, job_pb2
from sayit.common.v1 import transcription_pb2 as tpb
from sayit.scheduler.v1 import scheduler_service_pb2 as pb
from services.common.names import new_job_id
from services.jobs import changes, records, schema
from tests.unit.scheduler.conftest import Harness, until

FAILED = job_pb2.JOB_STATE_FAILED
UNAVAILABLE = grpc.StatusCode.UNAVAILABLE.value[0]
DEADLINE_EXCEEDED = grpc.StatusCode.DEADLINE_EXCEEDED.value[0]


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    """Redis of this test's own, with an append-only file, so it can be stopped and started."""
    server = RedisServer(tmp_path / "redis", appendonly=True).start()
    yield server
    server.kill()


@pytest.fixture
def settings(settings: dict[str, str], request: pytest.FixtureRequest) -> dict[str, str]:
    """Reconciling every half second, and any settings a test names (indirect parameters)."""
    return {**settings, "SAYIT_RECONCILE_SECONDS": "0.5", **getattr(request, "param", {})}


@contextlib.asynccontextmanager
async def reconciling(harness: Harness) -> AsyncIterator[None]:
    task = asyncio.create_task(harness.scheduler.reconciler.run_forever())
    try:
        yield
    finally:
        # A cancel that lands inside a redis-py command can be swallowed there: repeat it.
        while not task.done():
            task.cancel()
            await asyncio.wait({task}, timeout=0.1)


async def watch(harness: Harness, job_id: str, seen: list[str]) -> str:
    """Follow the job's events into `seen`; the kind of the last one when the stream ends."""
    request = pb.WatchJobRequest(tenant="acme", job_id=job_id)
    async for reply in harness.stub.WatchJob(request, timeout=60):
        seen.append(str(reply.event.WhichOneof("kind")))
    return seen[-1]


async def test_a_direct_job_whose_last_write_hit_a_redis_failure_still_ends(
    harness: Harness, redis_server: RedisServer
) -> None:
    harness.fake.script.release = release = asyncio.Event()
    job = await harness.submit()
    job_id = job.name.removeprefix("jobs/")
    await harness.fake.started.wait()
    seen: list[str] = []
    watchers = [asyncio.create_task(watch(harness, job_id, seen)) for _ in range(2)]
    await until(lambda: seen.count("progress") >= 2)

    async with reconciling(harness):
        failed_at = time.monotonic()
        await asyncio.to_thread(redis_server.stop)
        release.set()  # the transcript arrives while Redis is down: nothing can record it
        await until(lambda: not harness.scheduler.direct.tasks, within=20)
        await asyncio.to_thread(redis_server.start)
        back_at = time.monotonic()
        ends = await asyncio.wait_for(asyncio.gather(*watchers), timeout=30)
        ended_at = time.monotonic()
        # The reconciler's next pass finds the job terminal and stops tracking it (asserted
        # while it still runs: after this block it is cancelled, and nothing would untrack).
        await until(
            lambda: job_id.encode() not in harness.redis.smembers(harness.keys.active()),
            within=15,
        )

    # Both watchers' streams got the terminal event and closed.
    assert ends == ["failed", "failed"]
    ended = await harness.get(job.name)
    assert (ended.state, ended.error.code) == (FAILED, UNAVAILABLE)
    assert ended.error.message == (
        "the job's transcription ended but its result could not be recorded; submit it again"
    )
    print(
        f"\nredis down {back_at - failed_at:.2f} s; terminal {ended_at - failed_at:.2f} s after "
        f"the failure, {ended_at - back_at:.2f} s after Redis was back"
    )


@pytest.mark.parametrize(
    "settings",
    [{"SAYIT_JOB_BUDGET_MIN_SECONDS": "1", "SAYIT_JOB_BUDGET_FACTOR": "0"}],
    indirect=True,
)
async def test_a_job_whose_transcriber_never_answers_fails_after_its_budget(
    harness: Harness,
) -> None:
    harness.fake.script.release = asyncio.Event()  # never set: the transcriber hangs
    async with reconciling(harness):
        started = time.monotonic()
        job = await harness.submit(wait=True, deadline_seconds=10)
        took = time.monotonic() - started
    # The waiting caller got the job's end, not a deadline of its own.
    assert (job.state, job.error.code) == (FAILED, DEADLINE_EXCEEDED)
    assert job.error.message == (
        "the job took longer than its processing budget (1 s for 8 s of audio) and was "
        "stopped; you may submit it again"
    )
    assert 1.0 <= took < 5.0
    # Its transcription was stopped, and its watchers' streams end with the failure.
    await until(lambda: harness.fake.cancelled == 1)
    assert (await harness.events(job.name))[-1] == "failed"


async def test_a_queued_job_past_its_budget_fails_too(harness: Harness) -> None:
    job_id = new_job_id()
    record = records.new_record(
        tenant="acme",
        state=schema.RUNNING,
        routing=schema.QUEUED_ROUTE,
        queue="sayit-default",
        duration=600.0,
        config=tpb.TranscriptionConfig(language_code="ko"),
        filename="a.wav",
        owner=harness.scheduler.instance,
        chunks_total=4,
        budget_seconds=4800.0,
    )
    record["created_ms"] = schema.now_ms() - 4801 * 1000
    record["planned"], record["planned_ms"] = 1, schema.now_ms()
    accepted = changes.event(job_id, accepted=event_pb2.JobAccepted(audio_duration_seconds=600))
    await harness.scheduler.store.create(job_id, record, accepted)
    await harness.scheduler.reconciler.once()
    job = await harness.get(job_id)
    assert (job.state, job.error.code) == (FAILED, DEADLINE_EXCEEDED)
    assert job.error.message == (
        "the job took longer than its processing budget (80 min for 10 min of audio) and was "
        "stopped; you may submit it again"
    )
