"""The scheduler's job store against a real Redis: the append script's guarantees, watching,
listing and tenant isolation."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
import redis.asyncio as aioredis

from devsupport.mesh import RedisServer
from sayit.common.v1 import event_pb2, job_pb2, transcription_pb2
from services.common.errors import InvalidArgument, NotFound
from services.common.names import new_job_id
from services.jobs import changes, records, schema
from services.jobs.schema import Keys
from services.jobs.store import SOCKET_TIMEOUT_SECONDS, JobStore

pytestmark = pytest.mark.redis


@pytest.fixture
async def store(redis_server: RedisServer) -> AsyncIterator[JobStore]:
    client = aioredis.Redis.from_url(redis_server.url, socket_timeout=SOCKET_TIMEOUT_SECONDS)
    yield JobStore(client, Keys(f"t{new_job_id()[:6]}"), ttl_seconds=3600)
    await client.aclose()


async def new_job(store: JobStore, tenant: str = "acme", state: str = schema.QUEUED) -> str:
    job_id = new_job_id()
    record = records.new_record(
        tenant=tenant,
        state=state,
        routing=schema.QUEUED_ROUTE,
        queue="sayit-default",
        duration=100.0,
        config=transcription_pb2.TranscriptionConfig(language_code="ko"),
        filename="a.wav",
    )
    accepted = changes.event(job_id, accepted=event_pb2.JobAccepted(audio_duration_seconds=100))
    await store.create(job_id, record, accepted)
    return job_id


async def events(store: JobStore, job_id: str, after: int = 0, tenant: str = "acme") -> list:
    return [e async for e in store.watch(job_id, tenant, after)]


def pair(applied: changes.Applied) -> tuple[int, str]:
    return applied.sequence, applied.state


def progress(job_id: str, done: float) -> changes.Change:
    return changes.progress_change(job_id, changes.progress_message(done, 100.0))


async def test_sequences_progress_and_one_terminal_event(store: JobStore) -> None:
    job_id = await new_job(store)
    # Progress before the job started is refused: the record says QUEUED.
    assert (await store.apply(job_id, progress(job_id, 5))).sequence == 0
    assert pair(await store.apply(job_id, changes.start_change(job_id, 100.0))) == (
        2,
        schema.RUNNING,
    )
    assert (await store.apply(job_id, progress(job_id, 40))).sequence == 3
    # Progress never goes backwards: a lower fraction is dropped, not appended.
    assert (await store.apply(job_id, progress(job_id, 30))).sequence == 0
    segment = transcription_pb2.Segment(start_seconds=0.0, end_seconds=4.0, text="안녕하세요")
    assert (await store.apply(job_id, changes.segment_change(job_id, segment))).sequence == 4
    # The same segment again (a re-run of the audio) is not repeated.
    assert (await store.apply(job_id, changes.segment_change(job_id, segment))).sequence == 0
    transcript = transcription_pb2.Transcript(text="안녕하세요", audio_duration_seconds=100.0)
    assert pair(await store.apply(job_id, changes.completed_change(job_id, transcript))) == (
        5,
        schema.SUCCEEDED,
    )
    # Exactly one terminal event: later cancels and failures change nothing.
    assert pair(await store.apply(job_id, changes.cancelled_change(job_id, "late"))) == (
        0,
        schema.SUCCEEDED,
    )
    assert (await store.apply(job_id, changes.failed_change(job_id, 14, "late"))).sequence == 0

    history = await events(store, job_id)
    assert [e.sequence for e in history] == [1, 2, 3, 4, 5]
    assert {(e.name, e.job_id) for e in history} == {(f"jobs/{job_id}", job_id)}
    assert [e.WhichOneof("kind") for e in history] == [
        "accepted",
        "progress",
        "progress",
        "segment",
        "completed",
    ]
    job = await store.job(job_id, "acme")
    assert job.state == job_pb2.JOB_STATE_SUCCEEDED and job.transcript.text == "안녕하세요"
    assert job.progress.fraction == pytest.approx(1.0) and job.name == f"jobs/{job_id}"
    assert job.config.language_code == "ko" and job.start_time.seconds > 0


async def test_concurrent_writers_never_share_a_sequence(store: JobStore) -> None:
    job_id = await new_job(store, state=schema.RUNNING)

    async def write(n: int) -> int:
        segment = transcription_pb2.Segment(start_seconds=float(n), end_seconds=n + 0.5)
        change = changes.segment_change(job_id, segment, piece=n)  # one watermark per piece
        return (await store.apply(job_id, change)).sequence

    sequences = await asyncio.gather(*(write(n) for n in range(50)))
    assert sorted(sequences) == list(range(2, 52))


async def test_watch_resumes_after_any_sequence_and_waits_while_idle(store: JobStore) -> None:
    job_id = await new_job(store)
    await store.apply(job_id, changes.start_change(job_id, 100.0))

    async def finish_later() -> None:
        # Longer than redis-py's default 5 s socket timeout: an idle watch must keep waiting.
        await asyncio.sleep(6.5)
        await store.apply(job_id, progress(job_id, 50))
        await store.apply(job_id, changes.cancelled_change(job_id, "stop"))

    task = asyncio.create_task(finish_later())
    resumed = await events(store, job_id, after=2)
    await task
    assert [(e.sequence, e.WhichOneof("kind")) for e in resumed] == [
        (3, "progress"),
        (4, "cancelled"),
    ]
    # After the end: from the last sequence, nothing and no waiting.
    assert await asyncio.wait_for(events(store, job_id, after=4), 1.0) == []
    assert [e.sequence for e in await events(store, job_id, after=1)] == [2, 3, 4]


async def test_tenants_never_see_each_others_jobs(store: JobStore) -> None:
    job_id = await new_job(store, tenant="acme")
    with pytest.raises(NotFound):
        await store.job(job_id, "other")
    with pytest.raises(NotFound):
        await events(store, job_id, tenant="other")
    jobs, _ = await store.list_jobs("other", 10, "")
    assert jobs == []
    with pytest.raises(NotFound):
        await store.job(new_job_id(), "acme")


async def test_listing_is_newest_first_and_pages_are_stable(store: JobStore) -> None:
    created = []
    for _ in range(7):
        created.append(await new_job(store, tenant="lister"))
        await asyncio.sleep(0.002)
    pages, token = [], ""
    while True:
        jobs, token = await store.list_jobs("lister", 3, token)
        pages.append([j.name.removeprefix("jobs/") for j in jobs])
        if not token:
            break
        # A job created between pages does not shift the next page.
        await new_job(store, tenant="lister")
    assert [len(p) for p in pages] == [3, 3, 1]
    assert [i for page in pages for i in page] == list(reversed(created))
    with pytest.raises(InvalidArgument) as raised:
        await store.list_jobs("lister", 3, "not-a-token")
    assert raised.value.violations[0].field == "page_token"
    with pytest.raises(InvalidArgument):
        await store.list_jobs("lister", 101, "")


async def planned_job(store: JobStore, plan: list[tuple[float, float]]) -> str:
    """A queued job of 100 s, cut into `plan` and started by a worker."""
    job_id = await new_job(store)
    applied = await store.apply(job_id, changes.plan_change(plan))
    assert applied.applied
    await store.apply(job_id, changes.start_change(job_id, 100.0, len(plan)))
    return job_id


def chunk_transcript(text: str, start: float) -> transcription_pb2.Transcript:
    return transcription_pb2.Transcript(
        text=text,
        segments=[transcription_pb2.Segment(start_seconds=start, end_seconds=start + 1, text=text)],
    )


async def test_a_plan_is_recorded_once_and_only_while_queued(store: JobStore) -> None:
    job_id = await new_job(store)
    assert (await store.apply(job_id, changes.claim_planning_change("me"))).applied
    assert (await store.apply(job_id, changes.plan_change([(0, 40), (40, 60)]))).applied
    again = await store.apply(job_id, changes.plan_change([(0, 100)]))
    assert not again.applied
    assert not (await store.apply(job_id, changes.claim_planning_change("other"))).applied
    assert await store.chunks.durations(job_id, 2) == [40.0, 60.0]
    assert await store.chunks.finished(job_id, 2) == [False, False]
    job = await store.job(job_id, "acme")
    assert job.progress.chunks_total == 2
    cancelled = await new_job(store)
    await store.apply(cancelled, changes.cancelled_change(cancelled, "stop"))
    assert not (await store.apply(cancelled, changes.plan_change([(0, 100)]))).applied


async def test_chunk_progress_sums_over_chunks_and_never_goes_back(store: JobStore) -> None:
    job_id = await planned_job(store, [(0.0, 40.0), (40.0, 60.0)])
    steps = [
        (changes.chunk_progress_change(0, 10.0), True),
        (changes.chunk_progress_change(1, 30.0), True),
        (changes.chunk_progress_change(0, 5.0), False),  # a re-run chunk starting over
        (changes.chunk_progress_change(0, 55.0), True),  # clamped to the chunk's 40 s
        (changes.chunk_finished_change(0, chunk_transcript("하나", 1.0)), True),
        (changes.chunk_finished_change(0, chunk_transcript("하나", 1.0)), False),  # once
    ]
    for change, expected in steps:
        applied = await store.apply(job_id, change)
        assert applied.applied == expected and not applied.complete
    last = await store.apply(job_id, changes.chunk_finished_change(1, chunk_transcript("둘", 41.0)))
    assert last.applied and last.complete and last.state == schema.RUNNING
    # A re-run of a finished chunk learns that the job is ready to merge.
    rerun = await store.apply(
        job_id, changes.chunk_finished_change(1, chunk_transcript("둘", 41.0))
    )
    assert not rerun.applied and rerun.complete

    history = await events_until(store, job_id, 7)
    # The script's compact progress entries read back with the job's name too.
    assert {e.name for e in history} == {f"jobs/{job_id}"}
    progress = [e.progress for e in history if e.HasField("progress")]
    assert [round(p.audio_seconds_done, 3) for p in progress] == [
        0.0,
        10.0,
        40.0,
        70.0,
        70.0,
        100.0,
    ]
    assert [p.fraction for p in progress] == sorted(p.fraction for p in progress)
    assert progress[-1].fraction == pytest.approx(1.0)
    assert [(p.chunks_done, p.chunks_total) for p in progress][-3:] == [(0, 2), (1, 2), (2, 2)]
    job = await store.job(job_id, "acme")
    assert job.progress.chunks_done == 2 and job.progress.audio_seconds_done == pytest.approx(100)
    assert await store.chunks.finished(job_id, 2) == [True, True]


async def events_until(store: JobStore, job_id: str, count: int) -> list:
    """The first `count` events of a job that has not ended (watch would wait for more)."""
    found: list = []
    async for event in store.watch(job_id, "acme", 0):
        found.append(event)
        if len(found) == count:
            break
    return found


async def test_each_chunk_has_its_own_segment_watermark(store: JobStore) -> None:
    job_id = await planned_job(store, [(0.0, 50.0), (50.0, 50.0)])
    late = transcription_pb2.Segment(start_seconds=60.0, end_seconds=62.0, text="둘")
    early = transcription_pb2.Segment(start_seconds=1.0, end_seconds=2.0, text="하나")
    assert (await store.apply(job_id, changes.segment_change(job_id, late, piece=1))).sequence > 0
    # Chunk 0's first segment is not held back by chunk 1 being further along.
    assert (await store.apply(job_id, changes.segment_change(job_id, early, piece=0))).sequence > 0
    # A re-run of chunk 1 does not repeat its segment.
    assert (await store.apply(job_id, changes.segment_change(job_id, late, piece=1))).sequence == 0


async def test_concurrent_chunks_publish_a_consistent_total(store: JobStore) -> None:
    pieces = [(i * 10.0, 10.0) for i in range(10)]
    job_id = await planned_job(store, pieces)

    async def run_chunk(index: int) -> None:
        for done in (2.5, 5.0, 7.5):
            await store.apply(job_id, changes.chunk_progress_change(index, done))
        await store.apply(
            job_id, changes.chunk_finished_change(index, chunk_transcript(str(index), index * 10.0))
        )

    await asyncio.gather(*(run_chunk(i) for i in range(10)))
    history = await events_until(store, job_id, 2 + 40)
    progress = [e.progress for e in history if e.HasField("progress")]
    assert [e.sequence for e in history] == list(range(1, 43))
    done = [p.audio_seconds_done for p in progress]
    assert done == sorted(done) and done[-1] == pytest.approx(100.0)
    assert [p.chunks_done for p in progress] == sorted(p.chunks_done for p in progress)
    assert progress[-1].chunks_done == 10
