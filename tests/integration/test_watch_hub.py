"""Watching through one WatchHub against a real Redis: a late watcher reads the history and then
joins live without a gap or a repeat, a slow watcher neither holds up the others nor misses an
event, and a job whose record goes away ends its watches."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import pytest
import redis.asyncio as aioredis

from devsupport.mesh import RedisServer
from sayit.common.v1 import transcription_pb2
from services.common.names import new_job_id
from services.jobs import changes, schema
from services.jobs.schema import Keys
from services.jobs.store import SOCKET_TIMEOUT_SECONDS, JobStore
from services.jobs.watch_hub import WatchHub
from tests.integration.test_job_store import new_job

pytestmark = pytest.mark.redis


@pytest.fixture
async def clients(redis_server: RedisServer) -> AsyncIterator[tuple[aioredis.Redis, ...]]:
    made = [
        aioredis.Redis.from_url(redis_server.url, socket_timeout=SOCKET_TIMEOUT_SECONDS)
        for _ in range(3)
    ]
    yield tuple(made)
    for client in made:
        await client.aclose()


def make_store(clients: tuple[aioredis.Redis, ...], queue_events: int = 256) -> JobStore:
    requests, streams, reader = clients
    keys = Keys(f"t{new_job_id()[:6]}")
    hub = WatchHub(reader, keys, waker=requests, queue_events=queue_events)
    return JobStore(requests, keys, ttl_seconds=3600, streams=streams, hub=hub)


async def segments(store: JobStore, job_id: str, first: int, count: int, pause: float) -> None:
    for n in range(first, first + count):
        segment = transcription_pb2.Segment(start_seconds=float(n), end_seconds=n + 0.5)
        assert (await store.apply(job_id, changes.segment_change(job_id, segment))).sequence
        await asyncio.sleep(pause)


async def sequences(store: JobStore, job_id: str, after: int, pause: float = 0.0) -> list[int]:
    found = []
    async for event in store.watch(job_id, "acme", after):
        found.append(event.sequence)
        await asyncio.sleep(pause)
    return found


async def test_a_late_watcher_reads_history_then_live_without_gap_or_repeat(
    clients: tuple[aioredis.Redis, ...],
) -> None:
    store = make_store(clients)
    job_id = await new_job(store)
    await store.apply(job_id, changes.start_change(job_id, 100.0))  # sequence 2
    await segments(store, job_id, 0, 30, pause=0)  # sequences 3..32
    # Another watcher already follows the job from its start, so the hub reads it live.
    early = asyncio.create_task(sequences(store, job_id, 0))
    writer = asyncio.create_task(segments(store, job_id, 30, 40, pause=0.002))
    await asyncio.sleep(0.02)  # join while the writer is appending
    late = asyncio.create_task(sequences(store, job_id, 10))
    await writer
    await store.apply(job_id, changes.cancelled_change(job_id, "done"))  # sequence 73
    assert await asyncio.wait_for(late, 10) == list(range(11, 74))
    assert await asyncio.wait_for(early, 10) == list(range(1, 74))
    await store.hub.close()


async def test_a_slow_watcher_holds_up_nobody_and_misses_nothing(
    clients: tuple[aioredis.Redis, ...],
) -> None:
    store = make_store(clients, queue_events=4)
    job_id = await new_job(store)
    await store.apply(job_id, changes.start_change(job_id, 100.0))
    slow = asyncio.create_task(sequences(store, job_id, 0, pause=0.05))
    fast = asyncio.create_task(sequences(store, job_id, 0))
    await asyncio.sleep(0.1)  # both have joined live
    started = time.monotonic()
    await segments(store, job_id, 0, 40, pause=0.001)
    await store.apply(job_id, changes.cancelled_change(job_id, "done"))
    assert await asyncio.wait_for(fast, 5) == list(range(1, 44))
    fast_took = time.monotonic() - started
    # The slow one needs 43 x 50 ms; the fast one did not wait for it.
    assert fast_took < 1.5 and not slow.done()
    assert await asyncio.wait_for(slow, 10) == list(range(1, 44))
    await store.hub.close()


async def test_a_job_that_goes_away_ends_its_watches(
    clients: tuple[aioredis.Redis, ...],
) -> None:
    store = make_store(clients)
    job_id = await new_job(store, state=schema.RUNNING)
    watch = asyncio.create_task(sequences(store, job_id, 0))
    await asyncio.sleep(0.1)
    await clients[0].delete(store.keys.record(job_id), store.keys.events(job_id))
    # Ends within the hub's check for gone records (5 s), with the events it had.
    assert await asyncio.wait_for(watch, 8) == [1]
    await store.hub.close()
