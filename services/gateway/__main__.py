"""python -m services.gateway — serve the public sayit.speech.v1.SpeechService."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
from concurrent.futures import ThreadPoolExecutor

import redis.asyncio as aioredis

from sayit.speech.v1 import speech_service_pb2, speech_service_pb2_grpc
from services.common import logs, metrics
from services.common.call_limits import CallCaps, CallLimits
from services.common.channels import aio_channel
from services.common.errors import ConfigError
from services.common.redact import hide_password
from services.common.server import Lifecycle, Service, serve
from services.gateway import auth, quotas
from services.gateway.auth import Authenticator
from services.gateway.config import load_config
from services.gateway.interceptor import EdgeInterceptor
from services.gateway.live_keys import LiveKeys
from services.gateway.quotas import Limiter
from services.gateway.servicer import SpeechServicer
from services.gateway.store_outage import StoreOutage

SERVICE_NAME = speech_service_pb2.DESCRIPTOR.services_by_name["SpeechService"].full_name
# Probing is header reads for most formats; a few hundred ms for hours of raw AAC/MP3.
PROBE_THREADS = 2


async def main() -> int:
    try:
        config = load_config(os.environ)
        keys = (
            LiveKeys(config.api_keys_file, config.api_keys_reload_seconds)
            if config.api_keys_file
            else None
        )
    except ConfigError as error:
        print(f"gateway: bad configuration: {error}", file=sys.stderr)
        return 2
    logs.configure("gateway", config.server.log)
    if config.metrics_addr:
        try:
            metrics.serve(config.metrics_addr)
        except RuntimeError as error:
            print(f"gateway: {error}", file=sys.stderr)
            return 1
    log = logs.get_logger("sayit.gateway")
    if keys is None:
        # Only with SAYIT_AUTH=off (the settings refuse a missing keys file otherwise).
        log.warning(
            "auth_disabled",
            reason="SAYIT_AUTH=off: every caller is the 'default' tenant with every right, "
            "without a key; do not expose this gateway beyond a development machine",
        )
    else:
        log.info(
            "auth_enabled",
            file=str(config.api_keys_file),
            keys=len(keys.ring.by_hash),
            tenants=sorted(keys.ring.tenants),
            reload_seconds=config.api_keys_reload_seconds,
        )
    redis_client: aioredis.Redis | None = None
    limiter: Limiter | None = None
    per_tenant = keys.tenant_limits if keys else {}
    if config.limits.any or any(config.limits.merged(own).any for own in per_tenant.values()):
        redis_client = quotas.connect(config.redis_url, config.redis_pool)
        limiter = Limiter(
            redis_client,
            config.key_prefix,
            config.limits,
            per_tenant,
            StoreOutage(fail_open=config.quota_fail_open),
        )
        log.info(
            "limits_enabled", defaults=str(config.limits), redis=hide_password(config.redis_url)
        )
    channel = aio_channel(
        config.scheduler_addr, config.server.max_message_bytes, config.server.client_tls
    )
    executor = ThreadPoolExecutor(PROBE_THREADS, thread_name_prefix="probe")
    servicer = SpeechServicer(config, channel, limiter, executor)
    if limiter is not None and config.quota_fail_open:
        log.warning(
            "quota_fail_open",
            reason="SAYIT_QUOTA_FAIL_OPEN is set: while the quota store fails, requests go "
            "through without their rate or audio limits checked",
        )

    watcher: asyncio.Task[None] | None = None

    async def startup() -> None:
        nonlocal watcher
        if keys is not None:
            # Keys are revoked and added by editing the file: polled, or at once on SIGHUP.
            watcher = asyncio.create_task(keys.watch())
            asyncio.get_running_loop().add_signal_handler(signal.SIGHUP, keys.request_reload)

    async def draining() -> None:
        servicer.live.drain()  # live sessions flush and end; the drain waits for their calls

    async def shutdown() -> None:
        if watcher is not None:
            watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watcher
        await channel.close()
        if redis_client is not None:
            await redis_client.aclose()
        executor.shutdown(wait=False, cancel_futures=True)

    return await serve(
        config.server,
        [
            Service(
                SERVICE_NAME,
                lambda server: speech_service_pb2_grpc.add_SpeechServiceServicer_to_server(
                    servicer, server
                ),
            )
        ],
        Lifecycle(startup=startup, draining=draining, shutdown=shutdown),
        interceptors=[
            EdgeInterceptor(Authenticator(lambda: keys.ring) if keys else None, limiter),
            # Inside the edge: the tenant is known once the caller is authenticated.
            CallLimits(
                CallCaps(max_streams_per_tenant=config.max_streams_per_tenant),
                tenant_of=lambda: auth.current().tenant,
            ),
        ],
        edge=True,
    )


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
