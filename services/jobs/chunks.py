"""A queued job's chunks in Redis: the plan (offset and length of each), which have finished,
their transcripts, and each chunk's audio while it waits to be transcribed."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import redis.asyncio as aioredis

from sayit.common.v1 import transcription_pb2 as tpb
from services.jobs.errors import redis_errors
from services.jobs.schema import Keys


@dataclass(frozen=True)
class ChunkInfo:
    index: int
    count: int  # chunks in the job's plan
    offset: float  # seconds from the start of the file
    duration: float
    finished: bool


class Chunks:
    def __init__(self, client: aioredis.Redis, keys: Keys) -> None:
        self._redis: Any = client
        self._keys = keys

    async def info(self, job_id: str, index: int) -> ChunkInfo | None:
        """A chunk of the job's plan, or None if the plan has no such chunk."""
        with redis_errors():
            count = await self._redis.hget(self._keys.record(job_id), "chunks_total")
            offset, duration, finished = await self._redis.hmget(
                self._keys.chunks(job_id), f"off:{index}", f"dur:{index}", f"fin:{index}"
            )
        if offset is None or duration is None:
            return None
        return ChunkInfo(index, int(count or 0), float(offset), float(duration), bool(finished))

    async def finished(self, job_id: str, count: int) -> list[bool]:
        """For each chunk of the job's plan, whether it has finished."""
        if count <= 0:
            return []
        with redis_errors():
            flags = await self._redis.hmget(
                self._keys.chunks(job_id), [f"fin:{i}" for i in range(count)]
            )
        return [flag is not None for flag in flags]

    async def durations(self, job_id: str, count: int) -> list[float]:
        with redis_errors():
            values = await self._redis.hmget(
                self._keys.chunks(job_id), [f"dur:{i}" for i in range(count)]
            )
        return [float(v or 0.0) for v in values]

    async def transcripts(self, job_id: str, count: int) -> list[tpb.Transcript] | None:
        """Every chunk's transcript in order, or None if one is missing."""
        with redis_errors():
            values = await self._redis.hmget(
                self._keys.chunks(job_id), [f"t:{i}" for i in range(count)]
            )
        if any(v is None for v in values):
            return None
        return [tpb.Transcript.FromString(v) for v in values]

    async def set_audio(self, job_id: str, index: int, audio: bytes, ttl_seconds: int) -> None:
        key = self._keys.chunk_audio(job_id, index)
        with redis_errors():
            async with self._redis.pipeline(transaction=True) as pipe:
                pipe.sadd(self._keys.stored_audio(), key)  # counted by admission
                pipe.set(key, audio, ex=ttl_seconds)
                await pipe.execute()

    async def audio(self, job_id: str, index: int) -> bytes | None:
        with redis_errors():
            value: bytes | None = await self._redis.get(self._keys.chunk_audio(job_id, index))
        return value

    async def audio_exists(self, job_id: str, index: int) -> bool:
        with redis_errors():
            return bool(await self._redis.exists(self._keys.chunk_audio(job_id, index)))

    async def delete_audio(self, job_id: str, index: int) -> None:
        key = self._keys.chunk_audio(job_id, index)
        with redis_errors():
            # No MULTI: a full Redis refuses every command queued in one, deletes too.
            async with self._redis.pipeline(transaction=False) as pipe:
                pipe.delete(key)
                pipe.srem(self._keys.stored_audio(), key)
                await pipe.execute()
