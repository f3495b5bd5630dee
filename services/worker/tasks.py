"""The RQ job function: transcribe one chunk of a queued job on the transcriber beside this
worker. It runs in a work horse (never in a process that holds the model) as a coroutine, which
RQ runs to its end.

Its segments stream into the job's events on the whole file's clock, its progress is summed into
the job's, and the chunk that finishes last merges every chunk's transcript and completes the
job. The transcriber's failures are sorted here: transient ones are raised for RQ to retry the
chunk (see services.worker.failures), the rest fail the job.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Coroutine
from typing import Any

import grpc
from rq import get_current_job
from rq.utils import now

from sayit.common.v1 import audio_pb2, transcription_pb2
from sayit.transcriber.v1 import transcriber_service_pb2 as tpb
from sayit.transcriber.v1 import transcriber_service_pb2_grpc as tpb_grpc
from services.common import logs
from services.common.channels import aio_channel
from services.common.errors import public_details
from services.common.interceptors import ACCEPTED_KEY, JOB_ID_KEY, REQUEST_ID_KEY
from services.common.redis_client import BACKGROUND, async_client
from services.jobs import changes, completion, merge, queue, records, schema
from services.jobs.chunks import ChunkInfo
from services.jobs.schema import Keys
from services.jobs.store import SOCKET_TIMEOUT_SECONDS, JobStore
from services.worker import horse, metrics
from services.worker.config import WorkerConfig
from services.worker.failures import TRANSIENT, TransientError, describe

log = logs.get_logger("sayit.worker")

# The transcriber beside a worker serves that worker alone: "busy" means it is still winding
# down a transcription that was just cancelled. Wait for it rather than spend a retry.
BUSY_WAIT_SECONDS = 30.0


def transcribe_chunk(job_id: str, index: int) -> Coroutine[Any, Any, str]:
    """Transcribe chunk `index` of a queued job on the local transcriber; RQ runs the coroutine
    this returns, and its result is the outcome.

    The job's ids are bound here, before RQ runs the coroutine (in a copy of this context), so
    RQ's own lines about the job in this work horse carry them too."""
    horse.die_with_parent()
    settings = horse.settings()
    job = get_current_job()
    assert job is not None
    meta = job.meta or {}
    logs.bind(job_id=job_id, chunk=index, request_id=meta.get("request_id") or job_id[:16])
    return _transcribe_chunk(settings, job, job_id, index)


async def _transcribe_chunk(settings: WorkerConfig, job: Any, job_id: str, index: int) -> str:
    client = async_client(
        settings.redis_url,
        patience=BACKGROUND,
        socket_timeout=SOCKET_TIMEOUT_SECONDS,
        pool=settings.redis_pool,
        name="sayit-worker-task",
    )
    try:
        store = JobStore(client, Keys(settings.key_prefix), settings.job_ttl_seconds)
        return await _transcribe(store, job, job_id, index)
    finally:
        await client.aclose()


async def _transcribe(store: JobStore, job: Any, job_id: str, index: int) -> str:
    record = await store.raw_record(job_id)
    if not record:
        log.warning("job_record_missing")
        return "missing"
    chunk = await store.chunks.info(job_id, index)
    if chunk is None:
        log.warning("chunk_not_in_plan")
        return "missing"
    if chunk.finished:
        # A re-run of a chunk that finished (its worker died after): make sure the job ends.
        return f"already finished; {await completion.finish(store, job_id)}"
    total = records.number(record, "duration")
    state = (await store.apply(job_id, changes.start_change(job_id, total, chunk.count))).state
    if state != schema.RUNNING:
        log.info("chunk_skipped", state=state)
        return f"skipped ({state})"
    audio = await store.chunks.audio(job_id, index)
    if audio is None:
        await _fail(store, job, chunk, grpc.StatusCode.DATA_LOSS, "its audio expired before it ran")
        return "failed"
    if job.enqueued_at is not None:
        waited = max(0.0, (now() - job.enqueued_at).total_seconds())
        metrics.QUEUE_WAIT.labels(job.origin).observe(waited)
    log.info(
        "chunk_started",
        offset_seconds=round(chunk.offset, 2),
        audio_seconds=round(chunk.duration, 2),
        chunks=chunk.count,
        retries_left=job.retries_left,
    )
    # A single chunk is the caller's own file (the name helps decoding); chunks are FLAC.
    filename = records.text(record, "filename") if chunk.count == 1 else ""
    request = tpb.TranscribeStreamRequest(
        audio=audio_pb2.Audio(content=audio, filename=filename),
        config=transcription_pb2.TranscriptionConfig.FromString(record[b"config"]),
        job_id=job_id,
        audio_duration_seconds=chunk.duration,
    )
    # Finish (or fail) the gRPC call before RQ's own timeout fires inside it.
    timeout = max(10.0, float(job.timeout or 180) - 10.0)
    relay = _Relay(store, job_id, chunk)
    try:
        outcome = await _call_transcriber(request, relay, timeout)
    except grpc.aio.AioRpcError as error:
        # The job's error is public: gRPC's own text (addresses) is logged, not stored.
        code, details = error.code(), public_details(error, "the transcriber")
        if code in TRANSIENT:
            # Cut off once the transcriber had taken the chunk on: it died working on it.
            started_on = relay.received or relay.accepted
            crashed = started_on and code != grpc.StatusCode.RESOURCE_EXHAUSTED
            log.warning(
                "transcriber_stopped" if crashed else "transcriber_unavailable",
                code=code.name,
                details=error.details() or "",
            )
            raise TransientError(f"{code.name}: {details}", crashed=crashed) from None
        await _fail(store, job, chunk, code, details)
        return "failed"
    if outcome in ("completed", "chunk finished"):
        await store.chunks.delete_audio(job_id, index)
    log.info("chunk_finished", outcome=outcome)
    return outcome


async def _call_transcriber(
    request: tpb.TranscribeStreamRequest,
    relay: _Relay,
    timeout: float,  # noqa: ASYNC109 (a gRPC deadline for the call, not an asyncio timeout)
) -> str:
    settings = horse.settings()
    metadata = [
        (JOB_ID_KEY, request.job_id),
        (REQUEST_ID_KEY, str(logs.current().get("request_id"))),
    ]
    busy_until = time.monotonic() + BUSY_WAIT_SECONDS
    async with aio_channel(
        settings.transcriber_addr, settings.max_message_bytes, settings.tls
    ) as channel:
        stub = tpb_grpc.TranscriberServiceStub(channel)
        while True:
            call = stub.TranscribeStream(request, timeout=timeout, metadata=metadata)
            try:
                return await relay.run(call)
            except grpc.aio.AioRpcError as busy:
                if (
                    busy.code() != grpc.StatusCode.RESOURCE_EXHAUSTED
                    or relay.received
                    or time.monotonic() > busy_until
                ):
                    raise
                await asyncio.sleep(0.25)


class _Relay:
    """Appends what the transcriber streams for one chunk to the job, on the file's clock."""

    def __init__(self, store: JobStore, job_id: str, chunk: ChunkInfo) -> None:
        self._store = store
        self._job_id = job_id
        self._chunk = chunk
        self.received = False
        # The transcriber held a slot for the chunk (ACCEPTED_KEY), even if it sent nothing yet.
        self.accepted = False

    async def run(self, call: Any) -> str:
        """Stops early (cancelling the transcriber's work) if the job ended meanwhile."""
        job_id, chunk = self._job_id, self._chunk
        with contextlib.suppress(Exception):  # none came: the call's own error follows
            metadata = await call.initial_metadata()
            self.accepted = any(key == ACCEPTED_KEY for key, _ in (metadata or ()))
        async for response in call:
            self.received = True
            kind = response.WhichOneof("event")
            if kind == "progress":
                done = response.progress.audio_seconds_done
                change = changes.chunk_progress_change(chunk.index, done)
            elif kind == "segment":
                segment = merge.shifted_segment(response.segment, chunk.offset)
                change = changes.segment_change(job_id, segment, piece=chunk.index)
            else:
                transcript = merge.shifted_transcript(response.transcript, chunk.offset)
                finished = await self._store.apply(
                    job_id, changes.chunk_finished_change(chunk.index, transcript)
                )
                if finished.complete:
                    return await completion.finish(self._store, job_id)
                if finished.state == schema.RUNNING:
                    return "chunk finished"
                return f"ended ({finished.state})"
            applied = await self._store.apply(job_id, change)
            if applied.state in schema.TERMINAL:
                call.cancel()  # cancelled or failed elsewhere: stop the transcriber's work now
                return f"ended ({applied.state})"
        return "incomplete"


async def _fail(
    store: JobStore, job: Any, chunk: ChunkInfo, code: grpc.StatusCode, details: str
) -> None:
    job_id = str(job.args[0])
    if await store.fail(job_id, code, f"{describe(chunk)} failed: {details}"):
        # RQ is blocking: stop the job's other chunks off this loop.
        await asyncio.to_thread(queue.stop_chunks, job.connection, job_id, chunk.count, chunk.index)
    log.info("job_failed", code=code.name, details=details)
