"""How a chunk's failures end: which ones RQ retries, and the failure callback that fails the
whole job, saying why, once a chunk has no attempt left.

A chunk that crashes its transcriber every time therefore ends its job after a bounded number
of attempts instead of looping, and each of those crashes is counted against the job's audio
(services.jobs.poison), so the scheduler refuses the same audio at once next time.
"""

from __future__ import annotations

from typing import Any

import grpc
import redis
from rq.exceptions import AbandonedJobError

from services.common import logs
from services.jobs import blocking, queue, records
from services.jobs import metrics as job_metrics
from services.jobs.chunks import ChunkInfo
from services.jobs.schema import Keys
from services.jobs.store import JobStore

log = logs.get_logger("sayit.worker")

# Failures worth another attempt on another worker; anything else (bad audio...) is final.
# CANCELLED is the transcriber's doing (a shutdown past its grace period): a worker only
# cancels a call once the job has ended, and then stops reading.
TRANSIENT = frozenset(
    {grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.RESOURCE_EXHAUSTED, grpc.StatusCode.CANCELLED}
)


class TransientError(Exception):
    """The transcriber could not be reached, or stopped mid-chunk; RQ retries the chunk
    (bounded by its Retry). `crashed` says whether it had started on the chunk."""

    def __init__(self, message: str, *, crashed: bool) -> None:
        super().__init__(message)
        self.crashed = crashed


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
    """RQ's failure callback, wherever RQ runs it (a work horse, its worker, or the scheduler
    reaping a dead worker's chunk). Once a chunk has no retry left the whole job fails, naming
    the reason, and its other chunks are stopped."""
    abandoned = exc_type is AbandonedJobError or isinstance(exc_value, AbandonedJobError)
    if job.retries_left and job.retries_left > 0:
        # RQ will run it again.
        reason = "worker_died" if abandoned else "transcriber_unavailable"
        job_metrics.CHUNK_RETRIES.labels(reason).inc()
        return
    meta = job.meta or {}
    job_id, index = str(job.args[0]), int(job.args[1])
    attempts = int(meta.get("attempts", 0)) or (len(job.retry_intervals or []) + 1)

    async def fail(store: JobStore) -> tuple[bool, ChunkInfo, str]:
        chunk = await store.chunks.info(job_id, index) or ChunkInfo(index, 1, 0.0, 0.0, False)
        code, reason = _verdict(describe(chunk), attempts, abandoned, exc_value)
        failed = await store.fail(job_id, code, reason)
        if failed and _crashed(abandoned, exc_value):
            fingerprint = records.text(await store.raw_record(job_id), "fingerprint")
            if fingerprint:
                await store.poison.record(fingerprint, attempts)
        return failed, chunk, reason

    keys = Keys(str(meta.get("prefix", "sayit")))
    failed, chunk, reason = blocking.run(connection, keys, int(meta.get("ttl", 604800)), fail)
    if failed:
        queue.stop_chunks(connection, job_id, chunk.count, skip=index)
        log.warning("job_failed", job_id=job_id, chunk=index, reason=reason)


def _crashed(abandoned: bool, error: BaseException) -> bool:
    """The chunk's last attempt died with its work horse or its transcriber."""
    return abandoned or (isinstance(error, TransientError) and error.crashed)


def _verdict(
    what: str, attempts: int, abandoned: bool, error: BaseException
) -> tuple[grpc.StatusCode, str]:
    if abandoned:
        return grpc.StatusCode.INTERNAL, (
            f"{what} could not be transcribed: the queue worker running it died on every "
            f"attempt ({attempts}); the audio there may crash the service"
        )
    if isinstance(error, TransientError) and error.crashed:
        return grpc.StatusCode.INTERNAL, (
            f"{what} could not be transcribed: the transcriber stopped while transcribing it "
            f"on every attempt ({attempts}; last: {error}); the audio there may crash "
            "the transcriber"
        )
    return grpc.StatusCode.UNAVAILABLE, (
        f"{what} could not be transcribed after {attempts} attempts: {error}"
    )
