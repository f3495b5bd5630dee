"""The job store on a blocking Redis client, for work horses (and the scheduler's executor).

Writes ride out a short Redis outage (a restart with AOF takes a second or two): a work horse
that cannot append keeps retrying for a while instead of losing the chunk it is transcribing.
The append script is safe to repeat: segments carry watermarks, progress never goes backwards,
a chunk finishes once and a job ends once.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import grpc
import redis

from sayit.common.v1 import transcription_pb2 as tpb
from services.common import logs
from services.common.errors import status_code_number
from services.jobs import changes, merge, metrics, records, schema
from services.jobs.changes import Change
from services.jobs.schema import Keys

log = logs.get_logger("sayit.worker")
T = TypeVar("T")

_RETRYABLE = (
    redis.exceptions.ConnectionError,
    redis.exceptions.TimeoutError,
    redis.exceptions.BusyLoadingError,
)


@dataclass(frozen=True)
class Applied:
    sequence: int  # of the appended event, 0 if none
    state: str  # the job's state after the change
    applied: bool  # the change passed its checks and was written
    complete: bool  # (chunk changes) every chunk of the job has finished


@dataclass(frozen=True)
class ChunkInfo:
    index: int
    count: int
    offset: float
    duration: float
    finished: bool


def unpack(reply: Any) -> Applied:
    sequence, state, flags = reply
    state = state.decode() if isinstance(state, bytes) else str(state)
    flags = int(flags)
    return Applied(int(sequence), state, bool(flags & 1), bool(flags & 2))


class SyncJobStore:
    def __init__(
        self,
        connection: redis.Redis,
        keys: Keys,
        ttl_seconds: int,
        outage_seconds: float = 60.0,
    ) -> None:
        self.connection: Any = connection
        self.keys = keys
        self.ttl = ttl_seconds
        self._outage_seconds = outage_seconds
        self._append = connection.register_script(changes.APPEND_SCRIPT)

    def _retrying(self, operation: Callable[[], T]) -> T:
        deadline = time.monotonic() + self._outage_seconds
        delay = 0.25
        while True:
            try:
                return operation()
            except _RETRYABLE as error:
                if time.monotonic() + delay > deadline:
                    raise
                log.warning("redis_unavailable_retrying", error=str(error), retry_in=delay)
                time.sleep(delay)
                delay = min(delay * 2, 5.0)

    def apply(self, job_id: str, change: Change) -> Applied:
        keys = [self.keys.record(job_id), self.keys.events(job_id), self.keys.chunks(job_id)]
        args = change.script_args(self.ttl)
        applied = self._retrying(lambda: unpack(self._append(keys=keys, args=args)))
        metrics.event_recorded(change.event, applied.sequence)
        return applied

    def record(self, job_id: str) -> dict[bytes, bytes]:
        return self._retrying(lambda: self.connection.hgetall(self.keys.record(job_id)))

    def chunk(self, job_id: str, index: int) -> ChunkInfo | None:
        """A chunk of the job's plan, or None if the plan has no such chunk."""
        count, offset, duration, finished = self._retrying(
            lambda: (
                self.connection.hget(self.keys.record(job_id), "chunks_total"),
                *self.connection.hmget(
                    self.keys.chunks(job_id), f"off:{index}", f"dur:{index}", f"fin:{index}"
                ),
            )
        )
        if offset is None or duration is None:
            return None
        return ChunkInfo(index, int(count or 0), float(offset), float(duration), bool(finished))

    def chunk_audio(self, job_id: str, index: int) -> bytes | None:
        return self._retrying(lambda: self.connection.get(self.keys.chunk_audio(job_id, index)))

    def delete_chunk_audio(self, job_id: str, index: int) -> None:
        self._retrying(lambda: self.connection.delete(self.keys.chunk_audio(job_id, index)))

    def delete_all_audio(self, job_id: str, count: int) -> None:
        names = [self.keys.audio(job_id), *(self.keys.chunk_audio(job_id, i) for i in range(count))]
        self._retrying(lambda: self.connection.delete(*names))

    def chunk_transcripts(self, job_id: str, count: int) -> list[tpb.Transcript] | None:
        """Every chunk's transcript in order, or None if one is missing."""
        fields = [f"t:{i}" for i in range(count)]
        values = self._retrying(lambda: self.connection.hmget(self.keys.chunks(job_id), fields))
        if any(v is None for v in values):
            return None
        return [tpb.Transcript.FromString(v) for v in values]

    def fail(self, job_id: str, code: grpc.StatusCode, message: str) -> bool:
        """Fail the job (if still active) and drop its audio; True if this call failed it."""
        applied = self.apply(
            job_id, changes.failed_change(job_id, status_code_number(code), message)
        )
        count = int(records.number(self.record(job_id), "chunks_total"))
        self.delete_all_audio(job_id, max(count, 1))
        return applied.sequence > 0

    def remember(self, job_id: str, record: records.RawRecord, transcript: tpb.Transcript) -> None:
        """Keep a finished transcript in the tenant's result cache, if the job asked for it."""
        fingerprint = records.text(record, "fingerprint")
        ttl = int(records.number(record, "cache_ttl"))
        if not fingerprint or ttl <= 0:
            return
        key = self.keys.result_cache(records.tenant_of(record), fingerprint)
        self._retrying(lambda: self.connection.set(key, transcript.SerializeToString(), ex=ttl))


def finish(store: SyncJobStore, job_id: str) -> str:
    """Merge the chunks of a job whose every chunk has finished, and complete it. Safe to run
    more than once (or by the scheduler after the worker that should have died): the job
    completes once. Returns what happened."""
    record = store.record(job_id)
    if records.state_of(record) != schema.RUNNING:
        return f"ended ({records.state_of(record).lower() or 'missing'})"
    count = int(records.number(record, "chunks_total"))
    chunks = store.chunk_transcripts(job_id, count)
    if chunks is None:
        return "incomplete"
    started_ms = records.number(record, "started_ms") or records.number(record, "created_ms")
    transcript = merge.merge(
        chunks,
        duration_seconds=records.number(record, "duration"),
        processing_seconds=max(0.0, (schema.now_ms() - started_ms) / 1000.0),
    )
    applied = store.apply(
        job_id, changes.completed_change(job_id, transcript, allow=(schema.RUNNING,))
    )
    if applied.sequence == 0:
        return f"ended ({applied.state.lower()})"
    store.remember(job_id, record, transcript)
    store.delete_all_audio(job_id, count)
    log.info("job_completed", chunks=count, segments=len(transcript.segments))
    return "completed"
