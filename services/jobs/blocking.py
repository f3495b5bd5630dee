"""The job store for RQ's synchronous callbacks.

RQ calls a chunk's failure callback from blocking code, wherever it decides the chunk's fate (a
work horse, its worker, or the scheduler reaping abandoned chunks), and hands it a blocking
Redis client. `run` gives such code the one async store, on an event loop of its own, talking
to the same Redis. It is meant for rare calls: it opens a connection each time.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TypeVar

import redis

from services.common.redis_client import BACKGROUND, async_twin
from services.jobs.schema import Keys
from services.jobs.store import SOCKET_TIMEOUT_SECONDS, JobStore

T = TypeVar("T")


def run(
    connection: redis.Redis,
    keys: Keys,
    ttl_seconds: int,
    work: Callable[[JobStore], Awaitable[T]],
) -> T:
    """`await work(store)` on a store over the Redis `connection` talks to."""

    async def main() -> T:
        client = async_twin(connection, patience=BACKGROUND, socket_timeout=SOCKET_TIMEOUT_SECONDS)
        try:
            return await work(JobStore(client, keys, ttl_seconds))
        finally:
            await client.aclose()

    return asyncio.run(main())
