"""The job store of the scheduler: records, event streams and per-tenant listings in Redis."""

from __future__ import annotations

import base64
import binascii
import contextlib
import json
from collections.abc import AsyncIterator, Iterator, Mapping
from typing import Any

import redis.asyncio as aioredis
import redis.exceptions

from sayit.common.v1 import event_pb2, job_pb2
from services.common import names
from services.common.errors import InvalidArgument, NotFound, Unavailable
from services.scheduler import metrics, records
from services.scheduler.records import Change, Keys

# A blocked XREAD must return well before the client's socket timeout (redis-py's default is
# 5 s), or an idle watch fails with a timeout instead of looping.
WATCH_BLOCK_MS = 2000
SOCKET_TIMEOUT_SECONDS = 10.0
MAX_PAGE_SIZE = 100
DEFAULT_PAGE_SIZE = 20


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
        self._append = client.register_script(records.APPEND_SCRIPT)

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
    ) -> None:
        """Write a new job's record (and its audio, for queued jobs), list it under its
        tenant, and append its `accepted` event."""
        keys = self._keys
        with redis_errors():
            async with self._redis.pipeline(transaction=True) as pipe:
                pipe.hset(keys.record(job_id), mapping=dict(record))
                pipe.expire(keys.record(job_id), self._ttl)
                pipe.zadd(
                    keys.tenant_jobs(str(record["tenant"])), {job_id: float(record["created_ms"])}
                )
                pipe.expire(keys.tenant_jobs(str(record["tenant"])), self._ttl)
                if audio is not None:
                    pipe.set(keys.audio(job_id), audio, ex=audio_ttl_seconds)
                pipe.sadd(keys.active(), job_id)
                await pipe.execute()
        allow = (str(record["state"]),)
        await self.apply(job_id, Change(allow=allow, event=accepted))

    async def apply(self, job_id: str, change: Change) -> tuple[int, str]:
        """Apply one change atomically: (sequence of the appended event or 0, state after)."""
        with redis_errors():
            sequence, state = await self._append(
                keys=[self._keys.record(job_id), self._keys.events(job_id)],
                args=change.script_args(self._ttl),
            )
        metrics.event_recorded(change.event, int(sequence))
        return int(sequence), state.decode() if isinstance(state, bytes) else str(state)

    async def record(self, job_id: str, tenant: str) -> dict[bytes, bytes]:
        """The record of a tenant's job; NOT_FOUND if it does not exist or is another's."""
        with redis_errors():
            record = await self._redis.hgetall(self._keys.record(job_id))
        if not record or records.tenant_of(record) != tenant:
            raise NotFound(f"job jobs/{job_id} not found (it may have expired)")
        return record

    async def job(self, job_id: str, tenant: str) -> job_pb2.TranscriptionJob:
        return records.job_message(job_id, await self.record(job_id, tenant))

    async def raw_record(self, job_id: str) -> dict[bytes, bytes]:
        with redis_errors():
            record: dict[bytes, bytes] = await self._redis.hgetall(self._keys.record(job_id))
        return record

    async def set_audio(self, job_id: str, audio: bytes, ttl_seconds: int) -> None:
        with redis_errors():
            await self._redis.set(self._keys.audio(job_id), audio, ex=ttl_seconds)

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
        terminal event (or at once if the job ended at or before `after_sequence`)."""
        record = await self.record(job_id, tenant)
        last_sequence = int(records.number(record, "seq"))
        if records.state_of(record) in records.TERMINAL and after_sequence >= last_sequence:
            return
        stream = self._keys.events(job_id)
        cursor = records.stream_id(max(0, after_sequence))
        while True:
            with redis_errors():
                reply = await self._redis.xread({stream: cursor}, count=100, block=WATCH_BLOCK_MS)
            if not reply:
                # Nothing new for a while: make sure the job still exists.
                with redis_errors():
                    state = await self._redis.hget(self._keys.record(job_id), "state")
                if state is None:
                    return
                continue
            entries: Any = reply[0][1]
            for entry_id, fields in entries:
                message = records.parse_event(entry_id, fields)
                cursor = records.stream_id(message.sequence)
                yield message
                if records.is_terminal(message):
                    return

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
            await self._redis.zremrangebyscore(index, "-inf", records.now_ms() - self._ttl * 1000)
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
