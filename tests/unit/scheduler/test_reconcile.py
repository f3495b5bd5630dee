"""The reconciler keeps job records truthful when whoever runs a job disappears: no job stays
QUEUED or RUNNING forever."""

from __future__ import annotations

import numpy as np
import pytest
from rq.job import Job, JobStatus
from rq.serializers import JSONSerializer

from sayit.common.v1 import event_pb2, job_pb2
from sayit.common.v1 import transcription_pb2 as tpb
from services.common.audio import SAMPLE_RATE, encode_wav
from services.common.names import new_job_id
from services.jobs import changes, records, schema
from tests.unit.scheduler.conftest import Harness, until


@pytest.fixture
def settings(settings: dict[str, str]) -> dict[str, str]:
    return {**settings, "SAYIT_CHUNK_TARGET_SECONDS": "10", "SAYIT_CHUNK_MIN_SECONDS": "15"}


async def create(
    harness: Harness, *, state: str, routing: str, chunks: int, audio: bytes | None = None
) -> str:
    """A job as a scheduler that has since died ("gone") left it."""
    job_id = new_job_id()
    record = records.new_record(
        tenant="acme",
        state=state,
        routing=routing,
        queue="sayit-default" if routing == schema.QUEUED_ROUTE else "",
        duration=32.0,
        config=tpb.TranscriptionConfig(language_code="ko"),
        filename="a.wav",
        owner="gone",
        chunks_total=chunks,
    )
    accepted = changes.event(job_id, accepted=event_pb2.JobAccepted(audio_duration_seconds=32))
    await harness.scheduler.store.create(
        job_id, record, accepted, audio=audio, audio_ttl_seconds=60
    )
    return job_id


async def test_a_direct_job_of_a_scheduler_that_died_fails(harness: Harness) -> None:
    job_id = await create(harness, state=schema.RUNNING, routing=schema.DIRECT, chunks=1)
    await harness.scheduler.reconciler.once()
    job = await harness.get(job_id)
    assert job.state == job_pb2.JOB_STATE_FAILED
    assert job.error.code == 14  # UNAVAILABLE: submit it again
    assert job.error.message == "the scheduler running it stopped; submit it again"
    assert job_id.encode() not in harness.redis.smembers(harness.keys.active())


async def test_a_queued_job_nobody_plans_is_planned_here(harness: Harness) -> None:
    audio = encode_wav(np.zeros(int(32 * SAMPLE_RATE), dtype=np.float32))
    job_id = await create(
        harness, state=schema.QUEUED, routing=schema.QUEUED_ROUTE, chunks=0, audio=audio
    )
    await harness.scheduler.reconciler.once()
    assert harness.record(job_id)[b"owner"] == harness.scheduler.instance.encode()
    await until(lambda: harness.record(job_id).get(b"planned") == b"1", within=60.0)
    await until(lambda: not harness.scheduler.planner.running(job_id), within=60.0)
    assert harness.redis.llen("rq:queue:sayit-default") == 4


async def test_an_uploaded_job_nobody_plans_is_planned_here_from_its_parts(
    harness: Harness,
) -> None:
    """UploadJob stores the file as it arrives, in parts; a job whose scheduler died before
    planning it is planned by another from those parts."""
    audio = encode_wav(np.zeros(int(32 * SAMPLE_RATE), dtype=np.float32))
    job_id = await create(harness, state=schema.QUEUED, routing=schema.QUEUED_ROUTE, chunks=0)
    for start in range(0, len(audio), 100_000):
        await harness.scheduler.store.append_audio(job_id, audio[start : start + 100_000], 60)
    assert harness.redis.llen(harness.keys.audio(job_id)) == 11
    await harness.scheduler.reconciler.once()
    await until(lambda: harness.record(job_id).get(b"planned") == b"1", within=60.0)
    await until(lambda: not harness.scheduler.planner.running(job_id), within=60.0)
    assert harness.redis.llen("rq:queue:sayit-default") == 4
    assert not harness.redis.exists(harness.keys.audio(job_id))


async def test_a_chunk_the_queue_lost_is_queued_again(harness: Harness) -> None:
    job = await harness.submit(queue=True)
    job_id = job.name.removeprefix("jobs/")
    Job.fetch(f"{job_id}-0", connection=harness.redis, serializer=JSONSerializer).delete()
    assert harness.redis.llen("rq:queue:sayit-high") == 0
    await harness.scheduler.reconciler.once()  # within the grace period: left alone
    assert harness.redis.llen("rq:queue:sayit-high") == 0
    harness.redis.hset(harness.keys.record(job_id), "planned_ms", schema.now_ms() - 60_000)
    await harness.scheduler.reconciler.once()
    assert harness.redis.lrange("rq:queue:sayit-high", 0, -1) == [f"{job_id}-0".encode()]


async def test_a_chunk_the_queue_gave_up_on_fails_its_job(harness: Harness) -> None:
    job = await harness.submit(queue=True)
    job_id = job.name.removeprefix("jobs/")
    rq_job = Job.fetch(f"{job_id}-0", connection=harness.redis, serializer=JSONSerializer)
    rq_job.set_status(JobStatus.FAILED)
    await harness.scheduler.reconciler.once()
    final = await harness.get(job.name)
    assert final.state == job_pb2.JOB_STATE_FAILED
    assert final.error.message == "the queue worker failed while transcribing it"
    assert not harness.redis.exists(harness.keys.chunk_audio(job_id, 0))


async def test_a_job_whose_chunks_all_finished_is_merged_and_completed(harness: Harness) -> None:
    job_id = await create(harness, state=schema.QUEUED, routing=schema.QUEUED_ROUTE, chunks=0)
    store = harness.scheduler.store
    assert (await store.apply(job_id, changes.plan_change([(0.0, 16.0), (16.0, 16.0)]))).applied
    assert (await store.apply(job_id, changes.start_change(job_id, 32.0, 2))).applied
    for index, (text, start) in enumerate((("하나.", 1.0), ("둘.", 17.0))):
        transcript = tpb.Transcript(
            text=text,
            language_code="ko",
            language_probability=1.0,
            audio_duration_seconds=16.0,
            segments=[tpb.Segment(start_seconds=start, end_seconds=start + 2, text=text)],
        )
        await store.apply(job_id, changes.chunk_finished_change(index, transcript))
    assert (await harness.get(job_id)).state == job_pb2.JOB_STATE_RUNNING
    await harness.scheduler.reconciler.once()
    final = await harness.get(job_id)
    assert final.state == job_pb2.JOB_STATE_SUCCEEDED
    assert final.transcript.text == "하나. 둘."
    assert [s.id for s in final.transcript.segments] == [0, 1]
