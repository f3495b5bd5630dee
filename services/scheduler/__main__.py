"""python -m services.scheduler — serve SchedulerService (jobs, routing, RQ queues)."""

from __future__ import annotations

import asyncio
import os
import sys

from sayit.scheduler.v1 import scheduler_service_pb2, scheduler_service_pb2_grpc
from services.common import logs, metrics
from services.common.errors import ConfigError
from services.common.redact import hide_password
from services.common.server import Lifecycle, Service, serve
from services.scheduler import app
from services.scheduler import metrics as scheduler_metrics
from services.scheduler.config import load_config

SERVICE_NAME = scheduler_service_pb2.DESCRIPTOR.services_by_name["SchedulerService"].full_name


async def main() -> int:
    try:
        config = load_config(os.environ)
    except ConfigError as error:
        print(f"scheduler: bad configuration: {error}", file=sys.stderr)
        return 2
    logs.configure("scheduler", config.server.log)
    log = logs.get_logger("sayit.scheduler")
    scheduler = app.build(config)
    if config.metrics_addr:
        scheduler_metrics.track_direct_slots(scheduler.direct.slots)
        scheduler_metrics.track_live_sessions(scheduler.sessions.places)
        scheduler_metrics.track_queue_depths(scheduler.job_queue.depths)
        try:
            metrics.serve(config.metrics_addr)
        except RuntimeError as error:
            print(f"scheduler: {error}", file=sys.stderr)
            return 1

    async def startup() -> None:
        await scheduler.start()
        log.info(
            "scheduler_ready",
            instance=scheduler.instance,
            redis=hide_password(config.redis_url),
            transcriber=config.transcriber_addr,
            direct_slots=config.direct_slots,
            chunk_target_seconds=config.chunking.target_seconds,
            result_cache_ttl_seconds=config.result_cache_ttl_seconds,
        )

    return await serve(
        config.server,
        [
            Service(
                SERVICE_NAME,
                lambda server: scheduler_service_pb2_grpc.add_SchedulerServiceServicer_to_server(
                    scheduler.servicer, server
                ),
            )
        ],
        Lifecycle(startup=startup, draining=scheduler.drain, shutdown=scheduler.close),
    )


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
