"""python -m services.gateway — serve the public sayit.speech.v1.SpeechService."""

from __future__ import annotations

import asyncio
import os
import sys
from concurrent.futures import ThreadPoolExecutor

import redis.asyncio as aioredis

from sayit.speech.v1 import speech_service_pb2, speech_service_pb2_grpc
from services.common import logs, metrics
from services.common.call_limits import CallCaps, CallLimits
from services.common.channels import aio_channel
from services.common.errors import ConfigError
from services.common.server import Lifecycle, Service, serve
from services.gateway import auth, quotas
from services.gateway.auth import Authenticator
from services.gateway.config import load_config
from services.gateway.interceptor import EdgeInterceptor
from services.gateway.keys import KeyRing, load_keyring
from services.gateway.quotas import Limiter
from services.gateway.servicer import SpeechServicer
from services.gateway.store_outage import StoreOutage

SERVICE_NAME = speech_service_pb2.DESCRIPTOR.services_by_name["SpeechService"].full_name
# Probing is header reads for most formats; a few hundred ms for hours of raw AAC/MP3.
PROBE_THREADS = 2


async def main() -> int:
    try:
        config = load_config(os.environ)
        keyring = load_keyring(config.api_keys_file) if config.api_keys_file else None
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
    if keyring is None:
        log.warning(
            "auth_disabled",
            reason="SAYIT_API_KEYS_FILE is not set: every caller is the 'default' tenant with "
            "every right; set it to require API keys",
        )
    else:
        log.info("auth_enabled", keys=len(keyring.by_hash), tenants=sorted(keyring.tenants))
    redis_client: aioredis.Redis | None = None
    limiter: Limiter | None = None
    per_tenant = (keyring or KeyRing({}, {})).limits
    if config.limits.any or any(config.limits.merged(own).any for own in per_tenant.values()):
        redis_client = quotas.connect(config.redis_url, config.redis_pool)
        limiter = Limiter(
            redis_client,
            config.key_prefix,
            config.limits,
            per_tenant,
            StoreOutage(fail_open=config.quota_fail_open),
        )
        log.info("limits_enabled", defaults=str(config.limits), redis=config.redis_url)
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

    async def shutdown() -> None:
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
        Lifecycle(shutdown=shutdown),
        interceptors=[
            EdgeInterceptor(Authenticator(keyring) if keyring else None, limiter),
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
