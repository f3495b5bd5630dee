"""python -m services.scheduler — serve SchedulerService (jobs, routing, RQ queues)."""

from __future__ import annotations

import asyncio
import os
import sys
import uuid
from concurrent.futures import ThreadPoolExecutor

from sayit.scheduler.v1 import scheduler_service_pb2, scheduler_service_pb2_grpc
from services.common import logs, metrics
from services.common.channels import aio_channel
from services.common.errors import ConfigError
from services.common.server import Lifecycle, Service, serve
from services.jobs.blocking import SyncJobStore
from services.jobs.connection import async_client, sync_client
from services.jobs.queue import JobQueue
from services.jobs.schema import Keys
from services.jobs.store import SOCKET_TIMEOUT_SECONDS, JobStore
from services.scheduler import metrics as scheduler_metrics
from services.scheduler.backpressure import Backpressure
from services.scheduler.config import load_config
from services.scheduler.direct import DirectRunner
from services.scheduler.direct_slots import DirectSlots
from services.scheduler.planner import Planner
from services.scheduler.reconcile import Reconciler
from services.scheduler.repeats import RepeatPolicy, Repeats
from services.scheduler.servicer import SchedulerServicer

SERVICE_NAME = scheduler_service_pb2.DESCRIPTOR.services_by_name["SchedulerService"].full_name
REDIS_START_WAIT_SECONDS = 60.0


async def main() -> int:
    try:
        config = load_config(os.environ)
    except ConfigError as error:
        print(f"scheduler: bad configuration: {error}", file=sys.stderr)
        return 2
    logs.configure("scheduler", config.server.log)
    log = logs.get_logger("sayit.scheduler")
    instance = uuid.uuid4().hex[:12]
    keys = Keys(config.key_prefix)
    async_redis = async_client(config.redis_url, SOCKET_TIMEOUT_SECONDS)
    store = JobStore(async_redis, keys, config.job_ttl_seconds)
    sync_redis = sync_client(config.redis_url, SOCKET_TIMEOUT_SECONDS)
    job_queue = JobQueue(
        sync_redis, config.queue, promote_interval_seconds=config.reconcile_seconds
    )
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
    runner = DirectRunner(store, channel, slots)
    if config.metrics_addr:
        scheduler_metrics.track_direct_slots(runner.slots)
        scheduler_metrics.track_queue_depths(job_queue.depths)
        try:
            metrics.serve(config.metrics_addr)
        except RuntimeError as error:
            print(f"scheduler: {error}", file=sys.stderr)
            return 1
    backpressure = Backpressure(
        async_redis,
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
    repeats = Repeats(
        store,
        RepeatPolicy(
            cache_ttl_seconds=config.result_cache_ttl_seconds,
            job_ttl_seconds=config.job_ttl_seconds,
            in_flight_ttl_seconds=config.audio_ttl_seconds,
        ),
        instance,
    )
    servicer = SchedulerServicer(
        config,
        store,
        job_queue,
        runner,
        planner,
        repeats,
        executor,
        instance,
        admit=backpressure.admit,
    )
    reconciler = Reconciler(
        store,
        job_queue,
        planner,
        # The reconciler merges jobs whose merging worker died; it does so off the loop.
        SyncJobStore(sync_redis, keys, config.job_ttl_seconds, outage_seconds=5.0),
        executor,
        instance=instance,
        interval_seconds=config.reconcile_seconds,
    )
    background: list[asyncio.Task[None]] = []

    async def startup() -> None:
        deadline = asyncio.get_running_loop().time() + REDIS_START_WAIT_SECONDS
        while True:
            try:
                await reconciler.heartbeat()
                break
            except Exception as error:
                if asyncio.get_running_loop().time() > deadline:
                    raise RuntimeError(f"Redis at {config.redis_url} is unavailable") from error
                log.warning("redis_unavailable", error=str(error))
                await asyncio.sleep(1.0)
        background.append(asyncio.create_task(reconciler.run_forever()))
        log.info(
            "scheduler_ready",
            instance=instance,
            redis=config.redis_url,
            transcriber=config.transcriber_addr,
            direct_slots=config.direct_slots,
            chunk_target_seconds=config.chunking.target_seconds,
            result_cache_ttl_seconds=config.result_cache_ttl_seconds,
        )

    async def draining() -> None:
        await servicer.drain(config.server.shutdown_grace_seconds)

    async def shutdown() -> None:
        for task in background:
            task.cancel()
        planner.close()
        await asyncio.get_running_loop().run_in_executor(executor, job_queue.release)
        await channel.close()
        await async_redis.aclose()
        executor.shutdown(wait=False, cancel_futures=True)

    return await serve(
        config.server,
        [
            Service(
                SERVICE_NAME,
                lambda server: scheduler_service_pb2_grpc.add_SchedulerServiceServicer_to_server(
                    servicer, server
                ),
            )
        ],
        Lifecycle(startup=startup, draining=draining, shutdown=shutdown),
    )


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
