"""Audio that crashed a transcriber, remembered by fingerprint (see
services.scheduler.fingerprints) so that the next submission of it is refused at once instead of
taking down another transcriber.

Whoever sees a crash counts it here: the scheduler when a direct transcriber's process died
during the call, the queue's failure callback when a chunk's work horse or transcriber died on
every attempt. The scheduler decides what a count means (services.scheduler.poison): only
recent crashes count, and how many it takes is a setting, so one crash caused by something
else (a neighbour's OOM kill, a node going away) does not ban a file for good.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import redis.asyncio as aioredis

from services.jobs.errors import redis_errors
from services.jobs.schema import Keys, now_ms

# How long a crash is kept at most; the scheduler's SAYIT_POISON_TTL_SECONDS may only be shorter.
KEEP_SECONDS = 7 * 86400


@dataclass(frozen=True)
class Crashes:
    count: int
    last_ms: int


class PoisonRegistry:
    def __init__(self, client: aioredis.Redis, keys: Keys) -> None:
        self._redis: Any = client
        self._keys = keys

    async def record(self, fingerprint: str, crashes: int = 1) -> Crashes:
        """Count `crashes` more of this audio's; the count so far."""
        key = self._keys.poison(fingerprint)
        with redis_errors():
            async with self._redis.pipeline(transaction=True) as pipe:
                pipe.hincrby(key, "crashes", crashes)
                pipe.hset(key, "last_ms", now_ms())
                pipe.expire(key, KEEP_SECONDS)
                count, _, _ = await pipe.execute()
        return Crashes(int(count), now_ms())

    async def crashes(self, fingerprint: str) -> Crashes:
        with redis_errors():
            count, last = await self._redis.hmget(
                self._keys.poison(fingerprint), ["crashes", "last_ms"]
            )
        return Crashes(int(count or 0), int(last or 0))
