"""Audio that crashed the engine is refused at once the next time: the real scheduler in front of
a transcriber process that dies on a marked clip (tests.support.crashing_transcriber), restarted
in between as a pod would be; and a queued chunk that killed its work horse on every attempt, as
RQ's failure callback reports it."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from rq.exceptions import AbandonedJobError
from rq.job import Job
from rq.serializers import JSONSerializer

from devsupport.processes import free_port
from sayit.common.v1 import job_pb2
from services.scheduler.poison import CRASHED_MESSAGE
from services.worker.failures import on_chunk_failure
from tests.support.crashing_transcriber import MARKER, CrashingProcess
from tests.unit.scheduler.conftest import Harness

FAILED, SUCCEEDED = job_pb2.JOB_STATE_FAILED, job_pb2.JOB_STATE_SUCCEEDED
INTERNAL = grpc.StatusCode.INTERNAL.value[0]
POISON = b"RIFF....WAVE" + MARKER + b"\x00" * 64


@pytest.fixture
def crashing(tmp_path: Path) -> Iterator[CrashingProcess]:
    process = CrashingProcess(free_port(), tmp_path / "calls").start()
    yield process
    process.stop()


@pytest.fixture
def settings(settings: dict[str, str], crashing: CrashingProcess) -> dict[str, str]:
    return {**settings, "SAYIT_TRANSCRIBER_ADDR": crashing.addr}


async def until_ready(channel: grpc.aio.Channel, within: float = 10.0) -> None:
    deadline = time.monotonic() + within
    while channel.get_state(try_to_connect=True) != grpc.ChannelConnectivity.READY:
        assert time.monotonic() < deadline, "the scheduler never reconnected"
        await asyncio.sleep(0.05)


async def test_audio_that_crashed_the_engine_is_refused_at_once_without_a_second_crash(
    harness: Harness, crashing: CrashingProcess
) -> None:
    first = await harness.submit(POISON, wait=True)
    # The transcriber died on it: the job fails INTERNAL, saying so, and is not queued.
    assert (first.state, first.error.code) == (FAILED, INTERNAL)
    assert first.error.message == CRASHED_MESSAGE
    assert first.routing == job_pb2.ROUTING_DIRECT
    crashing.wait_dead()
    assert crashing.calls() == 1

    crashing.start()  # restarted, as its pod would be
    started = time.monotonic()
    second = await harness.submit(POISON, wait=True)
    refused_in = time.monotonic() - started
    assert (second.state, second.error.code) == (FAILED, INTERNAL)
    assert second.error.message.startswith(CRASHED_MESSAGE + " (the same audio")
    assert "refused until" in second.error.message
    assert second.name != first.name
    assert refused_in < 1.0
    # Nothing was sent to the transcriber, and it lives.
    assert crashing.calls() == 1 and crashing.alive()
    assert (await harness.events(second.name)) == ["accepted", "failed"]

    # Other audio is still transcribed.
    await until_ready(harness.scheduler.channel)
    other = await harness.submit(b"other audio", wait=True)
    assert other.state == SUCCEEDED
    assert crashing.calls() == 2 and crashing.alive()


async def test_a_crash_is_forgotten_after_the_poison_ttl(
    harness: Harness, crashing: CrashingProcess
) -> None:
    first = await harness.submit(POISON, wait=True)
    assert first.error.message == CRASHED_MESSAGE
    crashing.wait_dead()
    crashing.start()
    # The crash lies further back than SAYIT_POISON_TTL_SECONDS (1 hour by default).
    key = next(iter(harness.redis.scan_iter(f"{harness.keys.prefix}:poison:*")))
    harness.redis.hset(key, "last_ms", int((time.time() - 3601) * 1000))
    await until_ready(harness.scheduler.channel)
    again = await harness.submit(POISON, wait=True)
    # Sent again (and, this audio being what it is, it crashes the engine again).
    assert crashing.calls() == 2
    assert again.error.message == CRASHED_MESSAGE
    assert int(harness.redis.hget(key, "crashes") or 0) == 2


async def test_a_queued_chunk_that_killed_its_worker_on_every_attempt_bans_its_audio(
    harness: Harness, crashing: CrashingProcess
) -> None:
    job = await harness.submit(POISON, queue=True)
    job_id = job.name.removeprefix("jobs/")
    chunk = Job.fetch(f"{job_id}-0", connection=harness.redis, serializer=JSONSerializer)
    # What RQ does when it reaps the chunk after its last attempt's work horse died.
    chunk.retries_left = 0
    error = AbandonedJobError("work horse died")
    await asyncio.to_thread(on_chunk_failure, chunk, harness.redis, AbandonedJobError, error, None)
    failed = await harness.get(job.name)
    assert (failed.state, failed.error.code) == (FAILED, INTERNAL)
    assert "the queue worker running it died on every attempt (3)" in failed.error.message

    again = await harness.submit(POISON, wait=True)
    assert (again.state, again.error.code) == (FAILED, INTERNAL)
    assert again.error.message.startswith(CRASHED_MESSAGE)
    assert crashing.calls() == 0
