"""Redis clients for the scheduler and the workers.

After a Redis restart every pooled connection is dead, and redis-py only retries a command on
the errors it is told to: without `retry_on_error` each stale connection fails one caller with
UNAVAILABLE although Redis is back. Connection errors are retried a few times with a short
backoff (a command on a dead connection never reached Redis, so repeating it is safe); while
Redis is really down, callers still hear so within a second. Timeouts are not retried: a command
that timed out may have run.
"""

from __future__ import annotations

import redis
import redis.asyncio as aioredis
from redis.asyncio.retry import Retry as AsyncRetry
from redis.backoff import ExponentialBackoff
from redis.retry import Retry

HEALTH_CHECK_SECONDS = 10
_RETRIES = 3


def _backoff() -> ExponentialBackoff:
    return ExponentialBackoff(cap=0.5, base=0.05)


def async_client(url: str, socket_timeout: float) -> aioredis.Redis:
    return aioredis.Redis.from_url(
        url,
        health_check_interval=HEALTH_CHECK_SECONDS,
        socket_timeout=socket_timeout,
        socket_connect_timeout=5,
        retry=AsyncRetry(_backoff(), _RETRIES, (redis.exceptions.ConnectionError,)),
        retry_on_error=[redis.exceptions.ConnectionError],
    )


def sync_client(url: str, socket_timeout: float) -> redis.Redis:
    return redis.Redis.from_url(
        url,
        health_check_interval=HEALTH_CHECK_SECONDS,
        socket_timeout=socket_timeout,
        socket_connect_timeout=5,
        retry=Retry(_backoff(), _RETRIES, (redis.exceptions.ConnectionError,)),
        retry_on_error=[redis.exceptions.ConnectionError],
    )
