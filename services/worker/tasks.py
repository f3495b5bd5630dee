"""RQ job functions. They run in the forked work horse of a queue worker (never in a process
that holds the model) and call the transcriber beside the worker over loopback gRPC.

One RQ job transcribes one chunk of a queued job: its segments stream into the job's events on
the whole file's clock, its progress is summed into the job's, and the chunk that finishes last
merges every chunk's transcript and completes the job.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import grpc
import redis
from rq import get_current_job
from rq.exceptions import AbandonedJobError
from rq.utils import now

from sayit.common.v1 import audio_pb2, transcription_pb2
from sayit.transcriber.v1 import transcriber_service_pb2 as tpb
from sayit.transcriber.v1 import transcriber_service_pb2_grpc as tpb_grpc
from services.common import logs
from services.common.channels import sync_channel
from services.common.interceptors import JOB_ID_KEY, REQUEST_ID_KEY
from services.common.tls import ClientTLS
from services.jobs import changes, merge, queue, records, schema
from services.jobs import metrics as job_metrics
from services.jobs.blocking import ChunkInfo, SyncJobStore, finish
from services.jobs.schema import Keys
from services.worker import metrics

log = logs.get_logger("sayit.worker")

# Failures worth another attempt on another worker; anything else (bad audio...) is final.
# CANCELLED is the transcriber's doing (a shutdown past its grace period): this side only
# cancels a call once the job has ended, and then stops reading.
TRANSIENT = frozenset(
    {grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.RESOURCE_EXHAUSTED, grpc.StatusCode.CANCELLED}
)
# The transcriber beside a worker serves that worker alone: "busy" means it is still winding
# down a transcription that was just cancelled. Wait for it rather than spend a retry.
BUSY_WAIT_SECONDS = 30.0


class TransientError(Exception):
    """The transcriber could not be reached, or stopped mid-chunk; RQ retries the chunk
    (bounded by its Retry). `crashed` says whether it had started on the chunk."""

    def __init__(self, message: str, *, crashed: bool) -> None:
        super().__init__(message)
        self.crashed = crashed


@dataclass(frozen=True)
class WorkerContext:
    transcriber_addr: str
    max_message_bytes: int
    keys: Keys
    ttl_seconds: int
    # PEM bytes only: credentials are made in the work horse, after the fork.
    tls: ClientTLS | None = None


_context: WorkerContext | None = None


def configure(context: WorkerContext) -> None:
    """Called by the worker's __main__ before it forks any work horse."""
    global _context
    _context = context


def transcribe_chunk(job_id: str, index: int) -> str:
    """Transcribe chunk `index` of a queued job on the local transcriber; returns the outcome."""
    if _context is None:
        raise RuntimeError("services.worker.tasks.configure() was not called")
    job = get_current_job()
    assert job is not None
    meta = job.meta or {}
    logs.bind(job_id=job_id, chunk=index, request_id=meta.get("request_id") or job_id[:16])
    store = SyncJobStore(job.connection, _context.keys, _context.ttl_seconds)
    record = store.record(job_id)
    if not record:
        log.warning("job_record_missing")
        return "missing"
    chunk = store.chunk(job_id, index)
    if chunk is None:
        log.warning("chunk_not_in_plan")
        return "missing"
    if chunk.finished:
        # A re-run of a chunk that finished (its worker died after): make sure the job ends.
        return f"already finished; {finish(store, job_id)}"
    total = records.number(record, "duration")
    state = store.apply(job_id, changes.start_change(job_id, total, chunk.count)).state
    if state != schema.RUNNING:
        log.info("chunk_skipped", state=state)
        return f"skipped ({state})"
    audio = store.chunk_audio(job_id, index)
    if audio is None:
        _fail(store, job_id, chunk, grpc.StatusCode.DATA_LOSS, "its audio expired before it ran")
        return "failed"
    if job.enqueued_at is not None:
        metrics.QUEUE_WAIT.labels(job.origin).observe(
            max(0.0, (now() - job.enqueued_at).total_seconds())
        )
    log.info(
        "chunk_started",
        offset_seconds=round(chunk.offset, 2),
        audio_seconds=round(chunk.duration, 2),
        chunks=chunk.count,
        retries_left=job.retries_left,
    )
    # A single chunk is the caller's own file (the name helps decoding); chunks are WAV.
    filename = records.text(record, "filename") if chunk.count == 1 else ""
    request = tpb.TranscribeStreamRequest(
        audio=audio_pb2.Audio(content=audio, filename=filename),
        config=transcription_pb2.TranscriptionConfig.FromString(record[b"config"]),
        job_id=job_id,
    )
    metadata = [(JOB_ID_KEY, job_id), (REQUEST_ID_KEY, str(logs.current().get("request_id")))]
    # Finish (or fail) the gRPC call before RQ's own timeout fires inside it.
    timeout = max(10.0, float(job.timeout or 180) - 10.0)
    relay = _Relay(store, job_id, chunk)
    busy_until = time.monotonic() + BUSY_WAIT_SECONDS
    with sync_channel(
        _context.transcriber_addr, _context.max_message_bytes, _context.tls
    ) as channel:
        stub = tpb_grpc.TranscriberServiceStub(channel)
        try:
            while True:
                try:
                    call = stub.TranscribeStream(request, timeout=timeout, metadata=metadata)
                    outcome = relay.run(call)
                    break
                except grpc.RpcError as busy:
                    if (
                        busy.code() != grpc.StatusCode.RESOURCE_EXHAUSTED
                        or relay.received
                        or time.monotonic() > busy_until
                    ):
                        raise
                    time.sleep(0.25)
        except grpc.RpcError as error:
            code, details = error.code(), error.details() or ""
            if code in TRANSIENT:
                crashed = relay.received and code != grpc.StatusCode.RESOURCE_EXHAUSTED
                log.warning(
                    "transcriber_stopped" if crashed else "transcriber_unavailable",
                    code=code.name,
                    details=details,
                )
                raise TransientError(f"{code.name}: {details}", crashed=crashed) from None
            _fail(store, job_id, chunk, code, details)
            return "failed"
    if outcome in ("completed", "chunk finished"):
        store.delete_chunk_audio(job_id, index)
    log.info("chunk_finished", outcome=outcome)
    return outcome


class _Relay:
    """Appends what the transcriber streams for one chunk to the job, on the file's clock."""

    def __init__(self, store: SyncJobStore, job_id: str, chunk: ChunkInfo) -> None:
        self._store = store
        self._job_id = job_id
        self._chunk = chunk
        self.received = False

    def run(self, call: Any) -> str:
        """Stops early (cancelling the transcriber's work) if the job ended meanwhile."""
        job_id, chunk = self._job_id, self._chunk
        for response in call:
            self.received = True
            kind = response.WhichOneof("event")
            if kind == "progress":
                change = changes.chunk_progress_change(
                    chunk.index, response.progress.audio_seconds_done
                )
            elif kind == "segment":
                segment = merge.shifted_segment(response.segment, chunk.offset)
                change = changes.segment_change(job_id, segment, piece=chunk.index)
            else:
                transcript = merge.shifted_transcript(response.transcript, chunk.offset)
                done = self._store.apply(
                    job_id, changes.chunk_finished_change(chunk.index, transcript)
                )
                if done.complete:
                    return finish(self._store, job_id)
                return "chunk finished" if done.state == schema.RUNNING else f"ended ({done.state})"
            applied = self._store.apply(job_id, change)
            if applied.state in schema.TERMINAL:
                call.cancel()  # cancelled or failed elsewhere: stop the transcriber's work now
                return f"ended ({applied.state})"
        return "incomplete"


def _fail(
    store: SyncJobStore, job_id: str, chunk: ChunkInfo, code: grpc.StatusCode, details: str
) -> None:
    message = f"{describe(chunk)} failed: {details}"
    if store.fail(job_id, code, message):
        queue.stop_chunks(store.connection, job_id, chunk.count, skip=chunk.index)
    log.info("job_failed", code=code.name, details=details)


def describe(chunk: ChunkInfo) -> str:
    if chunk.count <= 1:
        return "the audio"
    return (
        f"chunk {chunk.index + 1} of {chunk.count} "
        f"({_clock(chunk.offset)}–{_clock(chunk.offset + chunk.duration)})"
    )


def _clock(seconds: float) -> str:
    whole = int(seconds)
    return f"{whole // 3600:d}:{whole // 60 % 60:02d}:{whole % 60:02d}"


def on_chunk_failure(
    job: Any, connection: redis.Redis, exc_type: type, exc_value: BaseException, tb: Any
) -> None:
    """RQ's failure callback, wherever RQ runs it (work horse, or registry cleanup after a
    dead worker). Once a chunk has no retry left the whole job fails, naming the reason, and
    its other chunks are stopped; so a chunk that crashes its transcriber every time ends the
    job after a bounded number of attempts instead of looping."""
    abandoned = exc_type is AbandonedJobError or isinstance(exc_value, AbandonedJobError)
    if job.retries_left and job.retries_left > 0:
        # RQ will run it again.
        job_metrics.CHUNK_RETRIES.labels(
            "worker_died" if abandoned else "transcriber_unavailable"
        ).inc()
        return
    meta = job.meta or {}
    job_id, index = str(job.args[0]), int(job.args[1])
    store = SyncJobStore(
        connection, Keys(str(meta.get("prefix", "sayit"))), int(meta.get("ttl", 604800))
    )
    chunk = store.chunk(job_id, index) or ChunkInfo(index, 1, 0.0, 0.0, False)
    attempts = int(meta.get("attempts", 0)) or (len(job.retry_intervals or []) + 1)
    what = describe(chunk)
    if abandoned:
        code = grpc.StatusCode.INTERNAL
        reason = (
            f"{what} could not be transcribed: the queue worker running it died on every "
            f"attempt ({attempts}); the audio there may crash the service"
        )
    elif isinstance(exc_value, TransientError) and exc_value.crashed:
        code = grpc.StatusCode.INTERNAL
        reason = (
            f"{what} could not be transcribed: the transcriber stopped while transcribing it "
            f"on every attempt ({attempts}; last: {exc_value}); the audio there may crash "
            "the transcriber"
        )
    else:
        code = grpc.StatusCode.UNAVAILABLE
        reason = f"{what} could not be transcribed after {attempts} attempts: {exc_value}"
    if store.fail(job_id, code, reason):
        queue.stop_chunks(connection, job_id, chunk.count, skip=index)
        log.warning("job_failed", job_id=job_id, chunk=index, reason=reason)
