"""The scheduler's parts, built from its settings and wired together: for its __main__, and for
tests that run a scheduler in-process."""

from __future__ import annotations

import asyncio
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import grpc
import redis
import redis.asyncio as aioredis

from services.common import logs
from services.common.channels import aio_channel
from services.common.redact import hide_password
from services.common.redis_client import (
    REQUESTS,
    STREAMS,
    RedisPool,
    async_client,
    sync_client,
)
from services.jobs.claims import Claims
from services.jobs.queue import JobQueue
from services.jobs.schema import Keys
from services.jobs.store import SOCKET_TIMEOUT_SECONDS, JobStore
from services.jobs.watch_hub import WatchHub
from services.scheduler.admission import Admission, Backpressure, DirectSlots, StoredAudio
from services.scheduler.cancellation import Cancellation
from services.scheduler.config import SchedulerConfig
from services.scheduler.direct import DirectJobs
from services.scheduler.planner import Planner
from services.scheduler.poison import PoisonGuard
from services.scheduler.reconcile import Reconciler
from services.scheduler.repeats import RepeatPolicy, Repeats
from services.scheduler.servicer import SchedulerServicer
from services.scheduler.sessions import LiveSessions
from services.scheduler.submission import Submissions
from services.scheduler.uploads import Uploads

log = logs.get_logger("sayit.scheduler")
REDIS_START_WAIT_SECONDS = 60.0


@dataclass
class Scheduler:
    config: SchedulerConfig
    instance: str
    requests_redis: aioredis.Redis
    streams_redis: aioredis.Redis
    hub_redis: aioredis.Redis
    rq_redis: redis.Redis
    channel: grpc.aio.Channel
    executor: ThreadPoolExecutor
    store: JobStore
    job_queue: JobQueue
    planner: Planner
    direct: DirectJobs
    sessions: LiveSessions
    servicer: SchedulerServicer
    reconciler: Reconciler
    _background: list[asyncio.Task[None]] = field(default_factory=list)

    async def start(self, *, reconcile: bool = True) -> None:
        """Wait for Redis (it may be starting too), then reconcile in the background."""
        deadline = asyncio.get_running_loop().time() + REDIS_START_WAIT_SECONDS
        while True:
            try:
                await self.reconciler.heartbeat()
                break
            except Exception as error:
                if asyncio.get_running_loop().time() > deadline:
                    raise RuntimeError(
                        f"Redis at {hide_password(self.config.redis_url)} is unavailable"
                    ) from error
                log.warning("redis_unavailable", error=str(error))
                await asyncio.sleep(1.0)
        if reconcile:
            self._background.append(asyncio.create_task(self.reconciler.run_forever()))

    async def drain(self) -> None:
        grace = self.config.server.shutdown_grace_seconds
        await asyncio.gather(self.direct.drain(grace), self.sessions.drain(grace))

    async def close(self) -> None:
        for task in self._background:
            task.cancel()
        self.planner.close()
        await asyncio.get_running_loop().run_in_executor(self.executor, self.job_queue.release)
        await self.channel.close()
        await self.store.hub.close()
        await self.requests_redis.aclose()
        await self.streams_redis.aclose()
        await self.hub_redis.aclose()
        self.rq_redis.close()
        self.executor.shutdown(wait=False, cancel_futures=True)


def build(config: SchedulerConfig, instance: str | None = None) -> Scheduler:
    instance = instance or uuid.uuid4().hex[:12]
    keys = Keys(config.key_prefix)
    url, timeout, pool = config.redis_url, SOCKET_TIMEOUT_SECONDS, config.redis_pool
    # Every client is named after this scheduler, so CLIENT LIST shows what it holds.
    name = f"sayit-scheduler-{instance}"
    requests_redis = async_client(
        url, patience=REQUESTS, socket_timeout=timeout, pool=pool, name=name
    )
    # Event streams' history and the watch hub's live reads, with a patience that rides out a
    # Redis restart; the hub holds one connection, whatever the number of open streams, and
    # history reads (short, at each watch's start) share a quarter of the pool's size.
    history_pool = RedisPool(max(2, pool.max_connections // 4), pool.wait_seconds)
    streams_redis = async_client(
        url, patience=STREAMS, socket_timeout=timeout, pool=history_pool, name=name
    )
    hub_redis = async_client(
        url, patience=STREAMS, socket_timeout=timeout, pool=RedisPool(1, timeout), name=name
    )
    hub = WatchHub(hub_redis, keys, waker=requests_redis, queue_events=config.watch_queue_events)
    # RQ is blocking: it runs in the executor, on a client of its own.
    rq_redis = sync_client(url, patience=REQUESTS, socket_timeout=timeout, pool=pool, name=name)
    store = JobStore(requests_redis, keys, config.job_ttl_seconds, streams=streams_redis, hub=hub)
    job_queue = JobQueue(rq_redis, config.queue, promote_interval_seconds=config.reconcile_seconds)
    executor = ThreadPoolExecutor(8, thread_name_prefix="blocking")
    channel = aio_channel(
        config.transcriber_addr, config.server.max_message_bytes, config.server.client_tls
    )
    slots = DirectSlots(
        config.direct_slots,
        ahead=config.direct_ahead,
        max_wait_seconds=config.direct_wait_seconds,
        default_rtf=config.default_rtf,
    )
    backpressure = Backpressure(
        requests_redis,
        keys,
        max_wait_seconds=config.max_queue_wait_seconds,
        default_rtf=config.default_rtf,
    )
    planner = Planner(
        store,
        job_queue,
        executor,
        config.chunking,
        audio_ttl_seconds=config.audio_ttl_seconds,
        max_audio_seconds=config.max_audio_seconds,
    )
    direct = DirectJobs(
        store,
        channel,
        slots,
        planner,
        timeout_seconds=config.queue.job_timeout,
        audio_ttl_seconds=config.audio_ttl_seconds,
        budget=config.budget,
    )
    sessions = LiveSessions(
        store, channel, direct, places=config.stream_sessions, instance=instance
    )
    cancellation = Cancellation(store, direct, planner, job_queue, executor)
    repeats = Repeats(
        store,
        Claims(requests_redis),
        RepeatPolicy(
            cache_ttl_seconds=config.result_cache_ttl_seconds,
            job_ttl_seconds=config.job_ttl_seconds,
            in_flight_ttl_seconds=config.audio_ttl_seconds,
        ),
        instance,
    )
    submissions = Submissions(
        store,
        Admission(
            config.sync_max_seconds,
            slots,
            backpressure,
            StoredAudio(
                requests_redis,
                keys,
                config.chunking,
                budget_bytes=config.stored_audio_budget_bytes,
            ),
        ),
        direct,
        planner,
        repeats,
        cancellation,
        executor,
        instance,
        result_cache_ttl_seconds=config.result_cache_ttl_seconds,
        poison=PoisonGuard(store, config.poison, instance),
        budget=config.budget,
    )
    reconciler = Reconciler(
        store,
        job_queue,
        planner,
        executor,
        direct,
        instance=instance,
        interval_seconds=config.reconcile_seconds,
    )
    return Scheduler(
        config=config,
        instance=instance,
        requests_redis=requests_redis,
        streams_redis=streams_redis,
        hub_redis=hub_redis,
        rq_redis=rq_redis,
        channel=channel,
        executor=executor,
        store=store,
        job_queue=job_queue,
        planner=planner,
        direct=direct,
        sessions=sessions,
        servicer=SchedulerServicer(
            submissions,
            store,
            cancellation,
            Uploads(store, submissions, audio_ttl_seconds=config.audio_ttl_seconds),
            sessions,
            max_list_bytes=config.server.max_message_bytes,
        ),
        reconciler=reconciler,
    )
