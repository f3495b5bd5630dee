"""Completing a queued job once its last chunk has finished: merge the chunks' transcripts,
record the job's end, keep the result for repeats and drop the audio."""

from __future__ import annotations

from services.common import logs
from services.jobs import changes, merge, records, schema
from services.jobs.store import JobStore

log = logs.get_logger("sayit.jobs")


async def finish(store: JobStore, job_id: str) -> str:
    """Merge the chunks of a job whose every chunk has finished, and complete it. Safe to run
    more than once, or by the reconciler after the worker that should have done it died: the
    job completes once. Returns what happened."""
    record = await store.raw_record(job_id)
    if records.state_of(record) != schema.RUNNING:
        return f"ended ({records.state_of(record).lower() or 'missing'})"
    count = int(records.number(record, "chunks_total"))
    chunks = await store.chunks.transcripts(job_id, count)
    if chunks is None:
        return "incomplete"
    started_ms = records.number(record, "started_ms") or records.number(record, "created_ms")
    transcript = merge.merge(
        chunks,
        duration_seconds=records.number(record, "duration"),
        processing_seconds=max(0.0, (schema.now_ms() - started_ms) / 1000.0),
    )
    applied = await store.apply(
        job_id, changes.completed_change(job_id, transcript, allow=(schema.RUNNING,))
    )
    if applied.sequence == 0:
        return f"ended ({applied.state.lower()})"
    await store.remember(job_id)
    await store.delete_all_audio(job_id, count)
    log.info("job_completed", chunks=count, segments=len(transcript.segments))
    return "completed"
