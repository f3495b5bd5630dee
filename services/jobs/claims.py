"""Keys that name one job for a while (an idempotency key, the job transcribing some audio now),
claimed and handed over atomically so identical submissions racing each other agree."""

from __future__ import annotations

from typing import Any

import redis.asyncio as aioredis

from services.jobs.errors import redis_errors

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


class Claims:
    def __init__(self, client: aioredis.Redis) -> None:
        self._redis: Any = client
        self._replace = client.register_script(_REPLACE_SCRIPT)
        self._release = client.register_script(_RELEASE_SCRIPT)

    async def claim(self, key: str, value: str, ttl_seconds: int) -> str | None:
        """Set `key` to `value` unless it is set; None if claimed, else the value it holds."""
        with redis_errors():
            if await self._redis.set(key, value, nx=True, ex=ttl_seconds):
                return None
            held = await self._redis.get(key)
        return held.decode() if held is not None else ""

    async def replace(self, key: str, old: str, new: str, ttl_seconds: int) -> bool:
        with redis_errors():
            return bool(await self._replace(keys=[key], args=[old, new, ttl_seconds]))

    async def release(self, key: str, value: str) -> None:
        with redis_errors():
            await self._release(keys=[key], args=[value])

    async def point(self, key: str, value: str, ttl_seconds: int) -> None:
        with redis_errors():
            await self._redis.set(key, value, ex=ttl_seconds)
