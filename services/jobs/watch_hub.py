"""One reader for every job event stream a process watches, fanned out to its subscribers.

A watch used to hold a pooled Redis connection in XREAD BLOCK for as long as it was open, so
about a hundred open streams took every connection. Here one task reads all watched streams with
one XREAD over many keys, on one connection of its own, and hands each entry to the job's
subscribers through bounded in-process queues: the connections a process holds do not grow with
its open streams.

- The XREAD is re-issued whenever the watched set changes. A new job to watch wakes the blocked
  read at once with CLIENT UNBLOCK sent on another connection (one command per new job, coalesced
  while a wake is pending); without the right to send it (a Redis ACL), the read's short block
  time bounds the delay instead.
- A subscriber whose queue is full is not waited for: it is marked `lagging` and gets nothing
  more, and its reader (JobStore.watch) catches up from the stream itself and subscribes again.
  So a slow caller never stalls the others, and never misses an event.
- Jobs whose record has gone (expired or deleted) end their subscriptions (GONE), checked every
  few seconds while they are watched.
- Redis failing the reader beyond its client's patience ends every subscription with
  UNAVAILABLE; callers re-attach with `after_sequence`, as they would after any broken stream.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import redis.asyncio as aioredis
import redis.exceptions

from sayit.common.v1 import event_pb2
from services.common import logs
from services.common.errors import SayItError, Unavailable
from services.jobs import records
from services.jobs.schema import Keys

log = logs.get_logger("sayit.jobs")

# The reader's XREAD blocks this long at most: the delay of a new watch when it cannot be woken,
# and well under the client's socket timeout.
BLOCK_MS = 1000
# Entries read per stream per XREAD: one busy job cannot crowd the others out of a read.
ENTRIES_PER_READ = 100
# How often watched jobs are checked for a record that has gone.
GONE_CHECK_SECONDS = 5.0
ERROR_PAUSE_SECONDS = 1.0
DEFAULT_QUEUE_EVENTS = 256
BROKE_OFF = (
    "the job's event stream broke off (the job store is unavailable); watch the job again "
    "with after_sequence set to the last sequence received"
)


class _Signal:
    """What a subscription gets besides events."""

    def __init__(self, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        return self.name


LAGGING = _Signal("LAGGING")  # its queue overflowed: catch up from the stream
GONE = _Signal("GONE")  # the job's record is gone: the watch ends
Item = event_pb2.JobEvent | _Signal | SayItError


@dataclass(eq=False)
class Subscription:
    job_id: str
    queue: asyncio.Queue[Item]
    lagging: bool = False

    def offer(self, item: Item) -> None:
        """Queue `item` unless the subscriber is behind; a full queue makes it lagging (its
        reader learns this after taking what is queued)."""
        if self.lagging:
            return
        if self.queue.qsize() >= self.queue.maxsize - 1:
            # The last place is kept for the signal, so the reader always sees it.
            self.lagging = True
            self.queue.put_nowait(LAGGING)
            return
        self.queue.put_nowait(item)

    def end(self, item: Item) -> None:
        """Queue a final item (GONE or an error) even over a full queue."""
        if self.queue.full():
            with contextlib.suppress(asyncio.QueueEmpty):
                self.queue.get_nowait()
        self.lagging = True
        self.queue.put_nowait(item)

    async def next(self) -> event_pb2.JobEvent | _Signal:
        item = await self.queue.get()
        if isinstance(item, SayItError):
            raise item
        return item


@dataclass(eq=False)
class _Watched:
    cursor: str  # the last stream entry id read for this job
    subscriptions: set[Subscription] = field(default_factory=set)


class WatchHub:
    def __init__(
        self,
        reader: aioredis.Redis,
        keys: Keys,
        *,
        waker: aioredis.Redis | None = None,
        queue_events: int = DEFAULT_QUEUE_EVENTS,
        block_ms: int = BLOCK_MS,
    ) -> None:
        """`reader` serves only the hub's XREAD (one connection suffices and is all it uses);
        `waker`, another client to the same Redis, sends CLIENT UNBLOCK to it."""
        self._reader: Any = reader
        self._waker: Any = waker
        self._keys = keys
        self._queue_events = max(2, queue_events)
        self._block_ms = block_ms
        self._watched: dict[str, _Watched] = {}
        self._changed = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._reader_id: int | None = None
        self._blocked = False
        self._waking: asyncio.Task[None] | None = None
        self._closed = False
        self.wakes_sent = 0

    @property
    def watched_jobs(self) -> int:
        return len(self._watched)

    @property
    def subscribers(self) -> int:
        return sum(len(w.subscriptions) for w in self._watched.values())

    @contextlib.asynccontextmanager
    async def subscribe(self, job_id: str, after_sequence: int) -> AsyncIterator[Subscription]:
        """Receive the job's entries after `after_sequence` that the hub reads from now on
        (entries already in the stream may come too, or not: read them from the stream and
        skip what was seen)."""
        subscription = Subscription(job_id, asyncio.Queue(self._queue_events))
        watched = self._watched.get(job_id)
        if watched is None:
            watched = self._watched[job_id] = _Watched(records.stream_id(after_sequence))
            self._wake()
        watched.subscriptions.add(subscription)
        self._ensure_running()
        try:
            yield subscription
        finally:
            watched.subscriptions.discard(subscription)
            if not watched.subscriptions and self._watched.get(job_id) is watched:
                # The next XREAD leaves it out; no need to wake the current one.
                del self._watched[job_id]

    async def close(self) -> None:
        self._closed = True
        self._changed.set()
        for task in (self._task, self._waking):
            # A cancel that lands as a read times out can be swallowed (asyncio.timeout in
            # Python 3.11): the loop also stops on `_closed`, and the cancel is repeated.
            while task is not None and not task.done():
                task.cancel()
                await asyncio.wait({task}, timeout=0.5)
        self._task = None

    # --- the reader -----------------------------------------------------------------------------

    def _ensure_running(self) -> None:
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._run(), name="watch-hub")

    async def _run(self) -> None:
        next_gone_check = time.monotonic() + GONE_CHECK_SECONDS
        while not self._closed:
            if not self._watched:
                self._changed.clear()
                await self._changed.wait()
                continue
            try:
                await self._read_once()
                if time.monotonic() >= next_gone_check:
                    next_gone_check = time.monotonic() + GONE_CHECK_SECONDS
                    await self._end_gone()
            except asyncio.CancelledError:
                raise
            except (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError) as error:
                log.warning("watch_reader_failed", error=type(error).__name__)
                self._end_all()
                self._reader_id = None
                await asyncio.sleep(ERROR_PAUSE_SECONDS)
            except Exception as error:
                log.error("watch_reader_crashed", exc_info=error)
                self._end_all()
                await asyncio.sleep(ERROR_PAUSE_SECONDS)

    async def _read_once(self) -> None:
        if self._waker is not None and self._reader_id is None:
            self._reader_id = int(await self._reader.client_id())
        streams = {self._keys.events(job_id): w.cursor for job_id, w in self._watched.items()}
        if not streams:
            return  # the last watch ended while the reader's id was asked for
        self._changed.clear()
        self._blocked = True
        try:
            reply = await self._reader.xread(streams, count=ENTRIES_PER_READ, block=self._block_ms)
        finally:
            self._blocked = False
        for key, entries in reply or ():
            self._deliver(_job_id_of(key), entries)

    def _deliver(self, job_id: str, entries: list[tuple[bytes, Any]]) -> None:
        watched = self._watched.get(job_id)
        if watched is None or not entries:
            return
        for entry_id, fields in entries:
            message = records.parse_event(job_id, entry_id, fields)
            for subscription in list(watched.subscriptions):
                subscription.offer(message)
        last = entries[-1][0]
        watched.cursor = last.decode() if isinstance(last, bytes) else str(last)

    async def _end_gone(self) -> None:
        job_ids = list(self._watched)
        async with self._reader.pipeline(transaction=False) as pipe:
            for job_id in job_ids:
                pipe.exists(self._keys.record(job_id))
            found = await pipe.execute()
        for job_id, exists in zip(job_ids, found, strict=True):
            watched = self._watched.get(job_id)
            if not exists and watched is not None:
                for subscription in list(watched.subscriptions):
                    subscription.end(GONE)

    def _end_all(self) -> None:
        for watched in self._watched.values():
            for subscription in list(watched.subscriptions):
                subscription.end(Unavailable(BROKE_OFF))

    # --- waking the blocked read ----------------------------------------------------------------

    def _wake(self) -> None:
        self._changed.set()
        if self._waker is None or not self._blocked or self._reader_id is None:
            return
        if self._waking is None or self._waking.done():
            self._waking = asyncio.create_task(self._unblock(self._reader_id))

    async def _unblock(self, reader_id: int) -> None:
        try:
            self.wakes_sent += 1
            if not await self._waker.client_unblock(reader_id):
                # Not blocked after all, or (after a reconnect) another id: ask it again.
                self._reader_id = None
        except redis.exceptions.ResponseError as error:
            # E.g. a Redis ACL without CLIENT UNBLOCK: the block time bounds the delay instead.
            log.warning("watch_wake_refused", error=str(error))
            self._waker = None
        except Exception as error:
            log.warning("watch_wake_failed", error=type(error).__name__)


def _job_id_of(key: bytes | str) -> str:
    """The job id in an events key ("{prefix}:job:{id}:events")."""
    text = key.decode() if isinstance(key, bytes) else key
    return text.rsplit(":", 2)[-2]
