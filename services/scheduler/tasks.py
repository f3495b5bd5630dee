"""RQ job functions. They run in the forked work horse of a queue worker (never in a process
that holds the model) and call the transcriber beside the worker over loopback gRPC, appending
what it streams to the job's event stream."""

from __future__ import annotations

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
from services.common.errors import status_code_number
from services.common.interceptors import JOB_ID_KEY, REQUEST_ID_KEY
from services.common.tls import ClientTLS
from services.scheduler import metrics, records
from services.scheduler.records import Change, Keys

log = logs.get_logger("sayit.worker")

# Failures worth another attempt on another worker; anything else (bad audio...) is final.
TRANSIENT = frozenset({grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.RESOURCE_EXHAUSTED})


class TransientError(Exception):
    """The transcriber could not be reached; RQ retries the job (bounded by its Retry)."""


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


class SyncJobStore:
    """The part of the job store a work horse needs, on a blocking Redis client."""

    def __init__(self, connection: redis.Redis, keys: Keys, ttl_seconds: int) -> None:
        self.connection = connection
        self.keys = keys
        self.ttl = ttl_seconds
        self._append = connection.register_script(records.APPEND_SCRIPT)

    def apply(self, job_id: str, change: Change) -> tuple[int, str]:
        sequence, state = self._append(
            keys=[self.keys.record(job_id), self.keys.events(job_id)],
            args=change.script_args(self.ttl),
        )
        metrics.event_recorded(change.event, int(sequence))
        return int(sequence), state.decode() if isinstance(state, bytes) else str(state)

    def fail(self, job_id: str, code: grpc.StatusCode, message: str) -> None:
        self.apply(job_id, records.failed_change(job_id, status_code_number(code), message))
        self.connection.delete(self.keys.audio(job_id))


def transcribe_job(job_id: str) -> str:
    """Transcribe a queued job's audio on the local transcriber; returns the outcome."""
    if _context is None:
        raise RuntimeError("services.scheduler.tasks.configure() was not called")
    job = get_current_job()
    assert job is not None
    meta = job.meta or {}
    logs.bind(job_id=job_id, request_id=meta.get("request_id") or job_id[:16])
    store = SyncJobStore(job.connection, _context.keys, _context.ttl_seconds)
    record: Any = job.connection.hgetall(store.keys.record(job_id))
    if not record:
        log.warning("job_record_missing")
        return "missing"
    total = records.number(record, "duration")
    _, state = store.apply(job_id, records.start_change(job_id, total))
    if state != records.RUNNING:
        log.info("job_skipped", state=state)
        return f"skipped ({state})"
    if job.enqueued_at is not None:
        metrics.QUEUE_WAIT.labels(job.origin).observe(
            max(0.0, (now() - job.enqueued_at).total_seconds())
        )
    audio: Any = job.connection.get(store.keys.audio(job_id))
    if audio is None:
        store.fail(job_id, grpc.StatusCode.DATA_LOSS, "the job's audio expired before it ran")
        return "failed"
    log.info("job_started", audio_seconds=round(total, 2), retries_left=job.retries_left)
    request = tpb.TranscribeStreamRequest(
        audio=audio_pb2.Audio(content=audio, filename=records.text(record, "filename")),
        config=transcription_pb2.TranscriptionConfig.FromString(record[b"config"]),
        job_id=job_id,
    )
    metadata = [(JOB_ID_KEY, job_id), (REQUEST_ID_KEY, str(logs.current().get("request_id")))]
    # Finish (or fail) the gRPC call before RQ's own timeout fires inside it.
    timeout = max(10.0, float(job.timeout or 180) - 10.0)
    with sync_channel(
        _context.transcriber_addr, _context.max_message_bytes, _context.tls
    ) as channel:
        call = tpb_grpc.TranscriberServiceStub(channel).TranscribeStream(
            request, timeout=timeout, metadata=metadata
        )
        try:
            outcome = _relay(call, store, job_id, total)
        except grpc.RpcError as error:
            code, details = error.code(), error.details() or ""
            if code in TRANSIENT:
                log.warning("transcriber_unavailable", code=code.name, details=details)
                raise TransientError(f"transcriber {code.name}: {details}") from None
            store.fail(job_id, code, details)
            log.info("job_failed", code=code.name, details=details)
            return "failed"
    if outcome == "completed":
        job.connection.delete(store.keys.audio(job_id))
    log.info("job_finished", outcome=outcome)
    return outcome


def _relay(call: Any, store: SyncJobStore, job_id: str, total: float) -> str:
    """Append the transcriber's stream to the job; stop early if the job ended meanwhile."""
    for response in call:
        _, state = store.apply(job_id, records.transcriber_change(job_id, response, total))
        if response.HasField("transcript"):
            return "completed" if state == records.SUCCEEDED else f"ended ({state})"
        if state in records.TERMINAL:
            call.cancel()  # cancelled by the caller: stop the transcriber's work now
            return f"ended ({state})"
    return "incomplete"


def on_job_failure(
    job: Any, connection: redis.Redis, exc_type: type, exc_value: BaseException, tb: Any
) -> None:
    """RQ's failure callback, wherever RQ runs it (work horse, or registry cleanup after a
    dead worker). Records the failure once no retry is left, so no job stays RUNNING."""
    abandoned = exc_type is AbandonedJobError or isinstance(exc_value, AbandonedJobError)
    if job.retries_left and job.retries_left > 0:
        # RQ will run it again.
        reason = "worker_died" if abandoned else "transcriber_unavailable"
        metrics.CHUNK_RETRIES.labels(reason).inc()
        return
    meta = job.meta or {}
    keys = Keys(str(meta.get("prefix", "sayit")))
    store = SyncJobStore(connection, keys, int(meta.get("ttl", 7 * 86400)))
    if abandoned:
        reason = "the queue worker running this job died; retries exhausted"
    else:
        reason = f"transcription failed after retries: {exc_value}"
    store.fail(job.id, grpc.StatusCode.UNAVAILABLE, reason)
