"""The job store of the scheduler: records, event streams and per-tenant listings in Redis."""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import json
import time
from collections.abc import AsyncIterator, Iterator, Mapping
from typing import Any

import redis.asyncio as aioredis
import redis.exceptions

from sayit.common.v1 import event_pb2, job_pb2, transcription_pb2
from services.common import names
from services.common.errors import InvalidArgument, NotFound, Unavailable
from services.jobs import changes, metrics, records, schema
from services.jobs.blocking import Applied, unpack
from services.jobs.changes import Change
from services.jobs.schema import Keys

# A blocked XREAD must return well before the client's socket timeout (redis-py's default is
# 5 s), or an idle watch fails with a timeout instead of looping.
WATCH_BLOCK_MS = 2000
SOCKET_TIMEOUT_SECONDS = 10.0
MAX_PAGE_SIZE = 100
DEFAULT_PAGE_SIZE = 20
# A watcher rides out a Redis restart this long before the caller sees UNAVAILABLE.
WATCH_OUTAGE_SECONDS = 30.0
_REDIS_DOWN = (
    redis.exceptions.ConnectionError,
    redis.exceptions.TimeoutError,
    redis.exceptions.BusyLoadingError,
)
# Delete a key only if it still holds the value.
_RELEASE_SCRIPT = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""
# Point a key at a new value only if it still holds the old one.
_REPLACE_SCRIPT = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[2], 'EX', ARGV[3])
  return 1
end
return 0
"""


@contextlib.contextmanager
def redis_errors() -> Iterator[None]:
    """Redis being down is UNAVAILABLE (retryable) for the caller, never INTERNAL."""
    try:
        yield
    except (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError) as error:
        raise Unavailable(f"the job store (Redis) is unavailable: {error}") from error
    except redis.exceptions.BusyLoadingError as error:
        raise Unavailable("the job store (Redis) is loading its data; retry shortly") from error


class JobStore:
    def __init__(self, client: aioredis.Redis, keys: Keys, ttl_seconds: int) -> None:
        # Typed loosely: redis-py's return types are unions of bytes/str/RESP3 shapes.
        self._redis: Any = client
        self._keys = keys
        self._ttl = ttl_seconds
        self._append = client.register_script(changes.APPEND_SCRIPT)
        self._replace = client.register_script(_REPLACE_SCRIPT)
        self._release = client.register_script(_RELEASE_SCRIPT)

    @property
    def keys(self) -> Keys:
        return self._keys

    @property
    def ttl_seconds(self) -> int:
        return self._ttl

    async def ping(self) -> None:
        with redis_errors():
            await self._redis.ping()

    async def create(
        self,
        job_id: str,
        record: Mapping[str, bytes | str | int | float],
        accepted: event_pb2.JobEvent,
        *,
        audio: bytes | None = None,
        audio_ttl_seconds: int = 0,
        single_chunk: bool = False,
    ) -> None:
        """Write a new job's record (and its audio, for queued jobs), list it under its
        tenant, and append its `accepted` event. With `single_chunk`, the job is planned as
        one chunk at once: its audio is that chunk's."""
        keys = self._keys
        with redis_errors():
            async with self._redis.pipeline(transaction=True) as pipe:
                pipe.hset(keys.record(job_id), mapping=dict(record))
                pipe.expire(keys.record(job_id), self._ttl)
                pipe.zadd(
                    keys.tenant_jobs(str(record["tenant"])), {job_id: float(record["created_ms"])}
                )
                pipe.expire(keys.tenant_jobs(str(record["tenant"])), self._ttl)
                if single_chunk:
                    pipe.hset(
                        keys.chunks(job_id), mapping={"off:0": 0.0, "dur:0": record["duration"]}
                    )
                    pipe.expire(keys.chunks(job_id), self._ttl)
                if audio is not None:
                    where = keys.chunk_audio(job_id, 0) if single_chunk else keys.audio(job_id)
                    pipe.set(where, audio, ex=audio_ttl_seconds)
                pipe.sadd(keys.active(), job_id)
                await pipe.execute()
        allow = (str(record["state"]),)
        await self.apply(job_id, Change(allow=allow, event=accepted))

    async def apply(self, job_id: str, change: Change) -> tuple[int, str]:
        """Apply one change atomically: (sequence of the appended event or 0, state after)."""
        applied = await self.apply_change(job_id, change)
        return applied.sequence, applied.state

    async def apply_change(self, job_id: str, change: Change) -> Applied:
        keys = self._keys
        with redis_errors():
            reply = await self._append(
                keys=[keys.record(job_id), keys.events(job_id), keys.chunks(job_id)],
                args=change.script_args(self._ttl),
            )
        applied = unpack(reply)
        metrics.event_recorded(change.event, applied.sequence)
        return applied

    async def record(self, job_id: str, tenant: str) -> dict[bytes, bytes]:
        """The record of a tenant's job; NOT_FOUND if it does not exist or is another's."""
        with redis_errors():
            record = await self._redis.hgetall(self._keys.record(job_id))
        return _owned(record, job_id, tenant)

    async def job(self, job_id: str, tenant: str) -> job_pb2.TranscriptionJob:
        return records.job_message(job_id, await self.record(job_id, tenant))

    async def raw_record(self, job_id: str) -> dict[bytes, bytes]:
        with redis_errors():
            record: dict[bytes, bytes] = await self._redis.hgetall(self._keys.record(job_id))
        return record

    async def set_audio(self, job_id: str, audio: bytes, ttl_seconds: int) -> None:
        with redis_errors():
            await self._redis.set(self._keys.audio(job_id), audio, ex=ttl_seconds)

    async def set_chunk_audio(
        self, job_id: str, index: int, audio: bytes, ttl_seconds: int
    ) -> None:
        with redis_errors():
            await self._redis.set(self._keys.chunk_audio(job_id, index), audio, ex=ttl_seconds)

    async def chunk_audio_exists(self, job_id: str, index: int) -> bool:
        with redis_errors():
            return bool(await self._redis.exists(self._keys.chunk_audio(job_id, index)))

    async def finished_chunks(self, job_id: str, count: int) -> list[bool]:
        """For each chunk of the job's plan, whether it has finished."""
        if count <= 0:
            return []
        with redis_errors():
            flags = await self._redis.hmget(
                self._keys.chunks(job_id), [f"fin:{i}" for i in range(count)]
            )
        return [flag is not None for flag in flags]

    async def chunk_durations(self, job_id: str, count: int) -> list[float]:
        with redis_errors():
            values = await self._redis.hmget(
                self._keys.chunks(job_id), [f"dur:{i}" for i in range(count)]
            )
        return [float(v or 0.0) for v in values]

    async def delete_all_audio(self, job_id: str, count: int) -> None:
        """The caller's audio and every chunk's."""
        keys = self._keys
        with redis_errors():
            await self._redis.delete(
                keys.audio(job_id), *(keys.chunk_audio(job_id, i) for i in range(max(count, 1)))
            )

    # --- result cache, in-flight sharing and idempotency keys ------------------------------

    async def cached_result(
        self, tenant: str, fingerprint: str
    ) -> transcription_pb2.Transcript | None:
        with redis_errors():
            value = await self._redis.get(self._keys.result_cache(tenant, fingerprint))
        return None if value is None else transcription_pb2.Transcript.FromString(value)

    async def remember(self, job_id: str) -> None:
        """Keep a succeeded job's transcript in its tenant's result cache, if it asked for it."""
        with redis_errors():
            fields = await self._redis.hmget(
                self._keys.record(job_id), ["tenant", "fingerprint", "cache_ttl", "transcript"]
            )
            tenant, fingerprint, ttl, transcript = fields
            if fingerprint and transcript and int(ttl or 0) > 0:
                key = self._keys.result_cache(tenant.decode(), fingerprint.decode())
                await self._redis.set(key, transcript, ex=int(ttl))

    async def claim(self, key: str, value: str, ttl_seconds: int) -> str | None:
        """Set `key` to `value` unless it is set; None if claimed, else the value it holds."""
        with redis_errors():
            if await self._redis.set(key, value, nx=True, ex=ttl_seconds):
                return None
            held = await self._redis.get(key)
        return held.decode() if held is not None else ""

    async def replace_claim(self, key: str, old: str, new: str, ttl_seconds: int) -> bool:
        with redis_errors():
            return bool(await self._replace(keys=[key], args=[old, new, ttl_seconds]))

    async def release_claim(self, key: str, value: str) -> None:
        with redis_errors():
            await self._release(keys=[key], args=[value])

    async def point(self, key: str, value: str, ttl_seconds: int) -> None:
        with redis_errors():
            await self._redis.set(key, value, ex=ttl_seconds)

    async def count_planning_failure(self, job_id: str) -> int:
        with redis_errors():
            return int(await self._redis.hincrby(self._keys.record(job_id), "plan_failures", 1))

    async def attach(self, job_id: str) -> None:
        """Count a submission that shares this job (its owner's going away must not cancel
        it)."""
        with redis_errors():
            await self._redis.hincrby(self._keys.record(job_id), "attached", 1)

    async def active_ids(self) -> list[str]:
        with redis_errors():
            members = await self._redis.smembers(self._keys.active())
        return sorted(m.decode() for m in members)

    async def untrack(self, job_id: str) -> None:
        with redis_errors():
            await self._redis.srem(self._keys.active(), job_id)

    async def heartbeat(self, instance: str, ttl_seconds: int) -> None:
        with redis_errors():
            await self._redis.set(self._keys.scheduler(instance), b"1", ex=ttl_seconds)

    async def alive(self, instance: str) -> bool:
        with redis_errors():
            return bool(await self._redis.exists(self._keys.scheduler(instance)))

    async def audio(self, job_id: str) -> bytes | None:
        with redis_errors():
            value: bytes | None = await self._redis.get(self._keys.audio(job_id))
        return value

    async def delete_audio(self, job_id: str) -> None:
        with redis_errors():
            await self._redis.delete(self._keys.audio(job_id))

    async def watch(
        self, job_id: str, tenant: str, after_sequence: int
    ) -> AsyncIterator[event_pb2.JobEvent]:
        """The job's events after `after_sequence`, as they are appended; ends after the
        terminal event (or at once if the job ended at or before `after_sequence`). A watch
        that starts or runs while Redis restarts waits it out (WATCH_OUTAGE_SECONDS)."""
        record = _owned(
            await self._riding_out_outages(lambda: self._redis.hgetall(self._keys.record(job_id))),
            job_id,
            tenant,
        )
        last_sequence = int(records.number(record, "seq"))
        if records.state_of(record) in schema.TERMINAL and after_sequence >= last_sequence:
            return
        stream = self._keys.events(job_id)
        cursor = records.stream_id(max(0, after_sequence))
        while True:
            read = {stream: cursor}
            reply = await self._riding_out_outages(
                lambda: self._redis.xread(read, count=100, block=WATCH_BLOCK_MS)  # noqa: B023
            )
            if not reply:
                # Nothing new for a while: make sure the job still exists.
                state = await self._riding_out_outages(
                    lambda: self._redis.hget(self._keys.record(job_id), "state")
                )
                if state is None:
                    return
                continue
            entries: Any = reply[0][1]
            for entry_id, fields in entries:
                message = records.parse_event(job_id, entry_id, fields)
                cursor = records.stream_id(message.sequence)
                yield message
                if records.is_terminal(message):
                    return

    async def _riding_out_outages(self, read: Any) -> Any:
        """`await read()`, retried while Redis is down (restarting) for up to
        WATCH_OUTAGE_SECONDS; then UNAVAILABLE."""
        started = time.monotonic()
        while True:
            try:
                return await read()
            except _REDIS_DOWN as error:
                if time.monotonic() - started > WATCH_OUTAGE_SECONDS:
                    with redis_errors():
                        raise error
                await asyncio.sleep(0.5)

    async def list(
        self, tenant: str, page_size: int, page_token: str
    ) -> tuple[list[job_pb2.TranscriptionJob], str]:
        """A tenant's jobs, newest first. The page token is the (score, id) of the last job
        returned, so jobs created meanwhile never shift a page."""
        if page_size < 0 or page_size > MAX_PAGE_SIZE:
            raise InvalidArgument(
                f"page_size must be between 0 and {MAX_PAGE_SIZE}; got {page_size}",
                field="page_size",
            )
        size = page_size or DEFAULT_PAGE_SIZE
        start_score, after_id = _decode_page_token(page_token)
        index = self._keys.tenant_jobs(tenant)
        jobs: list[job_pb2.TranscriptionJob] = []
        with redis_errors():
            await self._redis.zremrangebyscore(index, "-inf", schema.now_ms() - self._ttl * 1000)
            entries: Any = await self._redis.zrevrangebyscore(
                index, start_score, "-inf", start=0, num=size * 2 + 10, withscores=True
            )
            for raw_id, score in entries:
                job_id = raw_id.decode()
                if after_id and score == start_score and job_id >= after_id:
                    continue  # the previous page ended at this (score, id)
                record = await self._redis.hgetall(self._keys.record(job_id))
                if not record:
                    await self._redis.zrem(index, job_id)
                    continue
                jobs.append(records.job_message(job_id, record))
                if len(jobs) == size:
                    return jobs, _encode_page_token(score, job_id)
        return jobs, ""


def _encode_page_token(score: float, job_id: str) -> str:
    raw = json.dumps([score, job_id]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode_page_token(token: str) -> tuple[float | str, str]:
    if not token:
        return "+inf", ""
    try:
        padded = token + "=" * (-len(token) % 4)
        score, job_id = json.loads(base64.urlsafe_b64decode(padded))
        if not isinstance(score, int | float) or not names.is_job_id(job_id):
            raise ValueError
        return float(score), str(job_id)
    except (ValueError, TypeError, binascii.Error, json.JSONDecodeError):
        raise InvalidArgument(
            "page_token is not a token returned by ListJobs; pass next_page_token unchanged",
            field="page_token",
        ) from None


def _owned(record: dict[bytes, bytes], job_id: str, tenant: str) -> dict[bytes, bytes]:
    """The record if it exists and is the tenant's; NOT_FOUND otherwise (never "forbidden":
    another tenant's job must look like no job at all)."""
    if not record or records.tenant_of(record) != tenant:
        raise NotFound(f"job jobs/{job_id} not found (it may have expired)")
    return record
