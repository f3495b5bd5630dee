"""Planning queued audio: long audio is decoded once, cut into chunks, each stored and queued;
audio that cannot be decoded fails its job."""

from __future__ import annotations

import numpy as np
import pytest

from sayit.common.v1 import job_pb2
from services.common.audio import SAMPLE_RATE, encode_wav
from tests.unit.scheduler.conftest import Harness, until

SECONDS = 32.0


@pytest.fixture
def settings(settings: dict[str, str]) -> dict[str, str]:
    return {**settings, "SAYIT_CHUNK_TARGET_SECONDS": "10", "SAYIT_CHUNK_MIN_SECONDS": "15"}


def noise(seconds: float) -> bytes:
    rng = np.random.default_rng(7)
    return encode_wav(rng.normal(0.0, 0.02, int(seconds * SAMPLE_RATE)).astype(np.float32))


async def test_long_audio_is_cut_into_chunks_that_are_stored_and_queued(harness: Harness) -> None:
    job = await harness.submit(noise(SECONDS), SECONDS)
    job_id = job.name.removeprefix("jobs/")
    await until(lambda: harness.record(job_id).get(b"planned") == b"1", within=60.0)
    await until(lambda: not harness.scheduler.planner.running(job_id), within=60.0)
    record = harness.record(job_id)
    assert record[b"chunks_total"] == b"4" and record[b"state"] == b"QUEUED"
    plan = harness.redis.hgetall(harness.keys.chunks(job_id))
    offsets = [float(plan[f"off:{i}".encode()]) for i in range(4)]
    lengths = [float(plan[f"dur:{i}".encode()]) for i in range(4)]
    assert offsets[0] == 0.0 and offsets == sorted(offsets)
    assert sum(lengths) == pytest.approx(SECONDS, abs=0.01)
    assert all(5.0 < n < 15.0 for n in lengths), lengths
    for index in range(4):  # each chunk is a FLAC of its own, on the queue in order
        assert harness.redis.get(harness.keys.chunk_audio(job_id, index))[:4] == b"fLaC"
    queued = harness.redis.lrange("rq:queue:sayit-default", 0, -1)
    assert queued == [f"{job_id}-{i}".encode() for i in range(4)]
    assert not harness.redis.exists(harness.keys.audio(job_id))  # the caller's file is gone
    assert (await harness.get(job.name)).progress.chunks_total == 4


async def test_audio_that_cannot_be_decoded_fails_its_job(harness: Harness) -> None:
    job = await harness.submit(b"not audio at all" * 100, SECONDS)
    await until(lambda: harness.record(job.name).get(b"state") == b"FAILED", within=60.0)
    final = await harness.get(job.name)
    assert final.state == job_pb2.JOB_STATE_FAILED
    assert final.error.code == 3  # INVALID_ARGUMENT
    assert final.error.message.startswith("could not decode audio 'clip.wav'")
    assert not harness.redis.exists(harness.keys.audio(job.name.removeprefix("jobs/")))
    assert harness.redis.llen("rq:queue:sayit-default") == 0
