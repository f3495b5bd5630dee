"""Admission counts the audio Redis holds for queued jobs: new queued work that would pass the
budget is refused (RESOURCE_EXHAUSTED with RetryInfo) before anything is written, and the count
follows audio that is deleted (cancel, completion) or expires, so nothing leaks."""

from __future__ import annotations

import grpc
import pytest
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from sayit.common.v1 import job_pb2
from sayit.scheduler.v1 import scheduler_service_pb2 as pb
from services.scheduler.admission import stored_audio
from tests.unit.scheduler.conftest import Harness, until

BUDGET = 1_000_000
CLIP = b"\x01" * 300_000  # one chunk's worth: held as it is sent (a single chunk)


@pytest.fixture
def settings(settings: dict[str, str]) -> dict[str, str]:
    return {**settings, "SAYIT_STORED_AUDIO_BUDGET_BYTES": str(BUDGET)}


@pytest.fixture(autouse=True)
def fresh_counts(monkeypatch: pytest.MonkeyPatch) -> None:
    # Each admission reads Redis afresh, so a test sees the effect of a delete at once.
    monkeypatch.setattr(stored_audio, "SNAPSHOT_SECONDS", 0.0)


async def refused(harness: Harness) -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await harness.submit(CLIP, 8.0, queue=True)
    return raised.value


def stored(harness: Harness) -> set[bytes]:
    return harness.redis.smembers(harness.keys.stored_audio())  # type: ignore[return-value]


async def test_a_full_audio_store_refuses_queued_work_and_keeps_what_it_holds(
    harness: Harness,
) -> None:
    jobs = [await harness.submit(CLIP, 8.0, queue=True) for _ in range(3)]
    error = await refused(harness)
    assert error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert error.details() == (
        "the queue's audio storage is full (900 kB of 1.0 MB held for jobs not yet "
        "transcribed; this audio needs 300 kB); retry in 30 s"
    )
    status = rpc_status.from_call(error)  # type: ignore[arg-type]
    assert status is not None
    retry, quota = error_details_pb2.RetryInfo(), error_details_pb2.QuotaFailure()
    assert any(detail.Unpack(retry) for detail in status.details)
    assert retry.retry_delay.seconds == 30
    assert any(detail.Unpack(quota) for detail in status.details)
    assert quota.violations[0].subject == "stored-audio"
    # Refused before anything was written: three jobs, three chunks, all intact and queued.
    listed = await harness.stub.ListJobs(pb.ListJobsRequest(tenant="acme"), timeout=5)
    assert sorted(j.name for j in listed.jobs) == sorted(j.name for j in jobs)
    for job in jobs:
        job_id = job.name.removeprefix("jobs/")
        assert harness.redis.get(harness.keys.chunk_audio(job_id, 0)) == CLIP
        assert (await harness.get(job.name)).state == job_pb2.JOB_STATE_QUEUED
    assert harness.redis.llen("rq:queue:sayit-high") == 3
    # Direct work holds no audio in Redis: it is not refused.
    assert (await harness.submit(wait=True)).state == job_pb2.JOB_STATE_SUCCEEDED


async def test_audio_too_big_for_the_whole_budget_is_refused_without_retry(
    harness: Harness,
) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await harness.submit(b"\x01" * 1_200_000, 8.0, queue=True)
    error = raised.value
    assert error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert error.details() == (
        "the audio needs about 1.2 MB of queue storage, more than the 1.0 MB this service "
        "holds for all queued audio; send it in shorter parts"
    )
    status = rpc_status.from_call(error)  # type: ignore[arg-type]
    assert status is not None
    retry = error_details_pb2.RetryInfo()
    assert not any(detail.Unpack(retry) for detail in status.details)  # waiting will not help
    assert not stored(harness)


async def test_the_count_follows_cancelled_finished_and_expired_audio(harness: Harness) -> None:
    jobs = [await harness.submit(CLIP, 8.0, queue=True) for _ in range(3)]
    ids = [job.name.removeprefix("jobs/") for job in jobs]
    assert stored(harness) == {harness.keys.chunk_audio(i, 0).encode() for i in ids}
    assert (await refused(harness)).code() == grpc.StatusCode.RESOURCE_EXHAUSTED

    # Cancelled: its chunk's bytes are free again.
    await harness.stub.CancelJob(pb.CancelJobRequest(tenant="acme", job_id=ids[0]), timeout=5)
    fourth = await harness.submit(CLIP, 8.0, queue=True)
    assert (await refused(harness)).code() == grpc.StatusCode.RESOURCE_EXHAUSTED

    # Finished: the worker drops a chunk's audio when its transcript is stored.
    await harness.scheduler.store.chunks.delete_audio(ids[1], 0)
    fifth = await harness.submit(CLIP, 8.0, queue=True)
    assert (await refused(harness)).code() == grpc.StatusCode.RESOURCE_EXHAUSTED

    # Expired (its TTL ran out; nobody deleted it): counted as nothing, its name pruned.
    harness.redis.pexpire(harness.keys.chunk_audio(ids[2], 0), 1)
    await until(lambda: not harness.redis.exists(harness.keys.chunk_audio(ids[2], 0)))
    await harness.submit(CLIP, 8.0, queue=True)
    assert harness.keys.chunk_audio(ids[2], 0).encode() not in stored(harness)
    assert (await refused(harness)).code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    held = {harness.keys.chunk_audio(j.name.removeprefix("jobs/"), 0) for j in (fourth, fifth)}
    assert {key.encode() for key in held} <= stored(harness)
    assert len(stored(harness)) == 3  # exactly the three chunks Redis holds


async def test_a_file_waiting_to_be_cut_counts_the_chunks_it_will_write(
    harness: Harness,
) -> None:
    # A 30 s file of 300 kB not cut yet (its scheduler died before planning it): while cut it
    # holds its own bytes and 30 s of FLAC chunks, 900 kB, so 300 kB more does not fit.
    store = harness.scheduler.store
    harness.redis.hset(harness.keys.record("unplanned"), mapping={"duration": 30.0})
    await store.set_audio("unplanned", CLIP, 3600)
    error = await refused(harness)
    assert error.details().startswith("the queue's audio storage is full (900 kB of 1.0 MB")
    # Half-way through cutting it: the chunk written replaces its share of the estimate.
    await store.chunks.set_audio("unplanned", 0, CLIP, 3600)
    error = await refused(harness)
    assert error.details().startswith("the queue's audio storage is full (900 kB of 1.0 MB")
    await store.delete_all_audio("unplanned", 1)
    assert (await harness.submit(CLIP, 8.0, queue=True)).state == job_pb2.JOB_STATE_QUEUED
