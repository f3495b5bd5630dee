"""The job store: records, event streams, audio and per-tenant listings in Redis.

One store for every process that touches jobs (the scheduler, the queue workers' tasks, the
reconciler). Every change goes through the append script (services.jobs.changes); reads and
the rest are plain commands. A caller's audio waiting to be planned is a list of parts, never
one value. Watching follows live events through the process's one WatchHub
(services.jobs.watch_hub), so open watches hold no Redis connection each. Redis being
unreachable becomes UNAVAILABLE once the client's patience has run out
(services.common.redis_client)."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Mapping
from typing import Any

import grpc
import redis.asyncio as aioredis

from sayit.common.v1 import event_pb2, job_pb2, transcription_pb2
from services.common.errors import NotFound, Unavailable, status_code_number
from services.jobs import changes, listing, metrics, records, schema
from services.jobs.changes import Applied, Change
from services.jobs.chunks import Chunks
from services.jobs.errors import redis_errors
from services.jobs.poison import PoisonRegistry
from services.jobs.schema import Keys
from services.jobs.watch_hub import GONE, LAGGING, WatchHub

SOCKET_TIMEOUT_SECONDS = 10.0
# Events read from a stream's history per command.
HISTORY_PAGE = 100
# The largest piece a caller's audio is stored in.
AUDIO_PART_BYTES = 4 * 1024 * 1024


class JobStore:
    def __init__(
        self,
        client: aioredis.Redis,
        keys: Keys,
        ttl_seconds: int,
        *,
        streams: aioredis.Redis | None = None,
        hub: WatchHub | None = None,
    ) -> None:
        """`streams` (default: `client`) reads event streams' history, with a patience that
        rides out a Redis restart; `hub` follows them live (default: a hub reading on
        `client`'s pool, for a process that watches little)."""
        # Typed loosely: redis-py's return types are unions of bytes/str/RESP3 shapes.
        self._redis: Any = client
        self._streams: Any = streams or client
        self.keys = keys
        self.ttl_seconds = ttl_seconds
        self._append = client.register_script(changes.APPEND_SCRIPT)
        self.chunks = Chunks(client, keys)
        self.poison = PoisonRegistry(client, keys)
        self.hub = hub or WatchHub(client, keys)

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
        keys = self.keys
        tenant = str(record["tenant"])
        with redis_errors():
            async with self._redis.pipeline(transaction=True) as pipe:
                pipe.hset(keys.record(job_id), mapping=dict(record))
                pipe.expire(keys.record(job_id), self.ttl_seconds)
                pipe.zadd(keys.tenant_jobs(tenant), {job_id: float(record["created_ms"])})
                pipe.expire(keys.tenant_jobs(tenant), self.ttl_seconds)
                if single_chunk:
                    pipe.hset(
                        keys.chunks(job_id), mapping={"off:0": 0.0, "dur:0": record["duration"]}
                    )
                    pipe.expire(keys.chunks(job_id), self.ttl_seconds)
                if audio is not None:
                    where = keys.chunk_audio(job_id, 0) if single_chunk else keys.audio(job_id)
                    pipe.sadd(keys.stored_audio(), where)  # counted by admission
                    if single_chunk:
                        pipe.set(where, audio, ex=audio_ttl_seconds)
                    else:
                        _push_parts(pipe, where, audio, audio_ttl_seconds)
                pipe.sadd(keys.active(), job_id)
                await pipe.execute()
        try:
            await self.apply(job_id, Change(allow=(str(record["state"]),), event=accepted))
        except BaseException:
            # No job without its first event (a full Redis refuses it): take the rest back.
            with contextlib.suppress(Exception):
                await self._discard(job_id, tenant)
            raise

    async def _discard(self, job_id: str, tenant: str) -> None:
        """Remove a job that was never accepted, whatever of it was written (deletes are
        allowed even in a full Redis)."""
        keys = self.keys
        audio = (keys.audio(job_id), keys.chunk_audio(job_id, 0))
        with redis_errors():
            # No MULTI: a full Redis refuses every command queued in one, deletes too.
            async with self._redis.pipeline(transaction=False) as pipe:
                pipe.delete(keys.record(job_id), keys.events(job_id), keys.chunks(job_id), *audio)
                pipe.srem(keys.stored_audio(), *audio)
                pipe.zrem(keys.tenant_jobs(tenant), job_id)
                pipe.srem(keys.active(), job_id)
                await pipe.execute()

    async def apply(self, job_id: str, change: Change) -> Applied:
        """Apply one change atomically (see Change)."""
        keys = self.keys
        with redis_errors():
            reply = await self._append(
                keys=[keys.record(job_id), keys.events(job_id), keys.chunks(job_id)],
                args=change.script_args(self.ttl_seconds),
            )
        applied = Applied.from_reply(reply)
        metrics.event_recorded(change.event, applied.sequence)
        return applied

    async def fail(self, job_id: str, code: grpc.StatusCode, message: str) -> bool:
        """Fail the job (if still active) and drop its audio; True if this call failed it."""
        change = changes.failed_change(job_id, status_code_number(code), message)
        applied = await self.apply(job_id, change)
        count = int(records.number(await self.raw_record(job_id), "chunks_total"))
        await self.delete_all_audio(job_id, count)
        return applied.sequence > 0

    async def record(self, job_id: str, tenant: str) -> dict[bytes, bytes]:
        """The record of a tenant's job; NOT_FOUND if it does not exist or is another's."""
        return _owned(await self.raw_record(job_id), job_id, tenant)

    async def job(self, job_id: str, tenant: str) -> job_pb2.TranscriptionJob:
        return records.job_message(job_id, await self.record(job_id, tenant))

    async def raw_record(self, job_id: str) -> dict[bytes, bytes]:
        with redis_errors():
            record: dict[bytes, bytes] = await self._redis.hgetall(self.keys.record(job_id))
        return record

    async def list_jobs(
        self,
        tenant: str,
        page_size: int,
        page_token: str,
        *,
        view: int = job_pb2.JOB_VIEW_BASIC,
        max_bytes: int | None = None,
    ) -> tuple[list[job_pb2.TranscriptionJob], str]:
        """A tenant's jobs, newest first, as `view` asks, a FULL page within `max_bytes` (see
        services.jobs.listing)."""
        return await listing.page(
            self._redis,
            self.keys,
            self.ttl_seconds,
            tenant,
            page_size,
            page_token,
            view=view,
            max_bytes=max_bytes,
        )

    # --- the caller's audio while the job waits to be planned ---------------------------------

    # Kept as a list of parts of at most AUDIO_PART_BYTES, so no one Redis value (and no one
    # read or write) grows with the file.

    async def set_audio(self, job_id: str, audio: bytes, ttl_seconds: int) -> None:
        key = self.keys.audio(job_id)
        with redis_errors():
            async with self._redis.pipeline(transaction=True) as pipe:
                pipe.sadd(self.keys.stored_audio(), key)  # counted by admission
                pipe.delete(key)
                _push_parts(pipe, key, audio, ttl_seconds)
                await pipe.execute()

    async def append_audio(self, job_id: str, part: bytes, ttl_seconds: int) -> None:
        """Add the next part of audio that arrives in pieces (each at most AUDIO_PART_BYTES)."""
        with redis_errors():
            async with self._redis.pipeline(transaction=True) as pipe:
                pipe.sadd(self.keys.stored_audio(), self.keys.audio(job_id))  # counted by admission
                pipe.rpush(self.keys.audio(job_id), part)
                pipe.expire(self.keys.audio(job_id), ttl_seconds)
                await pipe.execute()

    async def audio_parts(self, job_id: str) -> AsyncIterator[bytes] | None:
        """The audio's parts in order, read one at a time; None if it is gone (expired)."""
        key = self.keys.audio(job_id)
        with redis_errors():
            kind = await self._redis.type(key)
            if kind in (b"string", "string"):  # stored whole by an older version
                value: bytes | None = await self._redis.get(key)
                return None if value is None else _one(value)
            count = int(await self._redis.llen(key))
        return None if count == 0 else self._parts(key, count)

    async def _parts(self, key: str, count: int) -> AsyncIterator[bytes]:
        for index in range(count):
            with redis_errors():
                part: bytes | None = await self._redis.lindex(key, index)
            if part is None:
                raise Unavailable("the audio expired while it was being read")
            yield part

    async def delete_audio(self, job_id: str) -> None:
        await self._delete_audio_keys([self.keys.audio(job_id)])

    async def delete_all_audio(self, job_id: str, count: int) -> None:
        """The caller's audio and every chunk's."""
        keys = self.keys
        await self._delete_audio_keys(
            [keys.audio(job_id), *(keys.chunk_audio(job_id, i) for i in range(max(count, 1)))]
        )

    async def _delete_audio_keys(self, audio_keys: list[str]) -> None:
        with redis_errors():
            # No MULTI: a full Redis refuses every command queued in one, deletes too.
            async with self._redis.pipeline(transaction=False) as pipe:
                pipe.delete(*audio_keys)
                pipe.srem(self.keys.stored_audio(), *audio_keys)
                await pipe.execute()

    # --- results kept for repeats -------------------------------------------------------------

    async def cached_result(
        self, tenant: str, fingerprint: str
    ) -> transcription_pb2.Transcript | None:
        with redis_errors():
            value = await self._redis.get(self.keys.result_cache(tenant, fingerprint))
        return None if value is None else transcription_pb2.Transcript.FromString(value)

    async def remember(self, job_id: str) -> None:
        """Keep a succeeded job's transcript in its tenant's result cache, if it asked for it."""
        with redis_errors():
            tenant, fingerprint, ttl, transcript = await self._redis.hmget(
                self.keys.record(job_id), ["tenant", "fingerprint", "cache_ttl", "transcript"]
            )
            if fingerprint and transcript and int(ttl or 0) > 0:
                key = self.keys.result_cache(tenant.decode(), fingerprint.decode())
                await self._redis.set(key, transcript, ex=int(ttl))

    async def attach(self, job_id: str) -> None:
        """Count a submission that shares this job (its owner's going away must not cancel
        it)."""
        with redis_errors():
            await self._redis.hincrby(self.keys.record(job_id), "attached", 1)

    # --- bookkeeping of the reconciler --------------------------------------------------------

    async def count_planning_failure(self, job_id: str) -> int:
        with redis_errors():
            return int(await self._redis.hincrby(self.keys.record(job_id), "plan_failures", 1))

    async def active_ids(self) -> list[str]:
        with redis_errors():
            members = await self._redis.smembers(self.keys.active())
        return sorted(m.decode() for m in members)

    async def untrack(self, job_id: str) -> None:
        with redis_errors():
            await self._redis.srem(self.keys.active(), job_id)

    async def heartbeat(self, instance: str, ttl_seconds: int) -> None:
        with redis_errors():
            await self._redis.set(self.keys.scheduler(instance), b"1", ex=ttl_seconds)

    async def alive(self, instance: str) -> bool:
        with redis_errors():
            return bool(await self._redis.exists(self.keys.scheduler(instance)))

    # --- events -------------------------------------------------------------------------------

    async def watch(
        self, job_id: str, tenant: str, after_sequence: int
    ) -> AsyncIterator[event_pb2.JobEvent]:
        """The job's events after `after_sequence`, as they are appended; ends after the
        terminal event (or at once if the job ended at or before `after_sequence`).

        The watch subscribes to the process's WatchHub first and reads the stream's history
        second, so every event is in one or the other; the live ones already read from history
        are skipped by sequence. A watch that fell behind (see WatchHub) does the same again
        from its last sequence."""
        with redis_errors():
            record = await self._streams.hgetall(self.keys.record(job_id))
        record = _owned(record, job_id, tenant)
        last_sequence = int(records.number(record, "seq"))
        if records.state_of(record) in schema.TERMINAL and after_sequence >= last_sequence:
            return
        cursor = max(0, after_sequence)
        while True:
            async with self.hub.subscribe(job_id, cursor) as subscription:
                async for message in self._history(job_id, cursor):
                    cursor = message.sequence
                    yield message
                    if records.is_terminal(message):
                        return
                while True:
                    item = await subscription.next()
                    if item is GONE:
                        return
                    if item is LAGGING:
                        break
                    assert isinstance(item, event_pb2.JobEvent)
                    if item.sequence <= cursor:
                        continue
                    cursor = item.sequence
                    yield item
                    if records.is_terminal(item):
                        return

    async def _history(self, job_id: str, after: int) -> AsyncIterator[event_pb2.JobEvent]:
        """The events in the job's stream after sequence `after`, a page at a time."""
        stream = self.keys.events(job_id)
        while True:
            with redis_errors():
                entries: Any = await self._streams.xrange(
                    stream, min=f"({records.stream_id(after)}", count=HISTORY_PAGE
                )
            for entry_id, fields in entries:
                message = records.parse_event(job_id, entry_id, fields)
                after = message.sequence
                yield message
            if len(entries) < HISTORY_PAGE:
                return


def _push_parts(pipe: Any, key: str, audio: bytes, ttl_seconds: int) -> None:
    view = memoryview(audio)
    for start in range(0, len(view), AUDIO_PART_BYTES):
        pipe.rpush(key, view[start : start + AUDIO_PART_BYTES])  # a view: no copy
    pipe.expire(key, ttl_seconds)


async def _one(value: bytes) -> AsyncIterator[bytes]:
    yield value


def _owned(record: dict[bytes, bytes], job_id: str, tenant: str) -> dict[bytes, bytes]:
    """The record if it exists and is the tenant's; NOT_FOUND otherwise (never "forbidden":
    another tenant's job must look like no job at all)."""
    if not record or records.tenant_of(record) != tenant:
        raise NotFound(f"job jobs/{job_id} not found (it may have expired)")
    return record
