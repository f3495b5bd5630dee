"""Redis clients, all with one retry policy.

A command that fails because Redis cannot be reached (connection refused or reset, a pooled
connection that died with a Redis restart, Redis still loading its data) never ran, so sending it
again is safe: every client retries such failures inside redis-py, with backoff growing to 1 s,
for as long as its caller can wait (its *patience*). Timeouts are never retried: a command that
timed out may have run. Callers differ only in patience:

- `FAIL_FAST` (0 s): the gateway's limits, which are skipped when Redis is down;
- `REQUESTS` (1 s): calls a client waits on, which answer UNAVAILABLE once it runs out;
- `STREAMS` (30 s): event streams and the planner, which ride out a Redis restart;
- `BACKGROUND` (60 s): queue workers, which must not lose the chunk they are transcribing.

Every client has a pool of its own with a fixed size (`RedisPool`, from SAYIT_REDIS_MAX_CONNECTIONS
and SAYIT_REDIS_POOL_WAIT_SECONDS): a command that finds every connection in use waits for one,
for at most the pool's wait, and then fails with `POOL_EXHAUSTED` (a ConnectionError, which the
job store turns into a retryable UNAVAILABLE that says so). redis-py's default pool would instead
open connections until Redis or the process runs out, then fail "Too many connections".
Connections carry a client name (`CLIENT SETNAME`), so `CLIENT LIST` shows whose they are.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import redis
import redis.asyncio as aioredis
from redis.asyncio.retry import Retry as AsyncRetry
from redis.backoff import ExponentialBackoff
from redis.retry import Retry

FAIL_FAST, REQUESTS, STREAMS, BACKGROUND = 0.0, 1.0, 30.0, 60.0
HEALTH_CHECK_SECONDS = 10
CONNECT_TIMEOUT_SECONDS = 5.0
# BusyLoadingError (Redis loading its data after a restart) is a ConnectionError too.
RETRIED = (redis.exceptions.ConnectionError,)
_BASE, _CAP = 0.05, 1.0
# What redis-py's blocking pools say when their wait for a free connection ran out.
POOL_EXHAUSTED = "No connection available."


@dataclass(frozen=True)
class RedisPool:
    """The size of one client's connection pool, and how long a command waits for a free
    connection when all are in use."""

    max_connections: int = 32
    wait_seconds: float = 2.0


DEFAULT_POOL = RedisPool()


def pool_exhausted(error: BaseException) -> bool:
    return isinstance(error, redis.exceptions.ConnectionError) and str(error) == POOL_EXHAUSTED


def retries_for(patience_seconds: float) -> int:
    """How many retries the backoff (0.1, 0.2, 0.4, 0.8, 1, 1, ... s) needs to span `patience`."""
    waited, retries = 0.0, 0
    while waited < patience_seconds:
        retries += 1
        waited += min(_CAP, _BASE * 2**retries)
    return retries


def _options(socket_timeout: float, pool: RedisPool, name: str | None) -> dict[str, Any]:
    options: dict[str, Any] = {
        "health_check_interval": HEALTH_CHECK_SECONDS,
        "socket_timeout": socket_timeout,
        "socket_connect_timeout": min(CONNECT_TIMEOUT_SECONDS, socket_timeout),
        "max_connections": pool.max_connections,
        "timeout": pool.wait_seconds,  # the blocking pool's wait for a free connection
        # No CLIENT SETINFO: SayIt's Redis users may not run it (services.common.redis_acl).
        "driver_info": None,
    }
    if name:
        options["client_name"] = name
    return options


def async_client(
    url: str,
    *,
    patience: float,
    socket_timeout: float,
    pool: RedisPool = DEFAULT_POOL,
    name: str | None = None,
) -> aioredis.Redis:
    retry = AsyncRetry(ExponentialBackoff(cap=_CAP, base=_BASE), retries_for(patience), RETRIED)
    connections = aioredis.BlockingConnectionPool.from_url(
        url, retry=retry, **_options(socket_timeout, pool, name)
    )
    return aioredis.Redis.from_pool(connections)


def sync_client(
    url: str,
    *,
    patience: float,
    socket_timeout: float,
    pool: RedisPool = DEFAULT_POOL,
    name: str | None = None,
) -> redis.Redis:
    retry = Retry(ExponentialBackoff(cap=_CAP, base=_BASE), retries_for(patience), RETRIED)
    connections = redis.BlockingConnectionPool.from_url(
        url, retry=retry, **_options(socket_timeout, pool, name)
    )
    return redis.Redis.from_pool(connections)


def async_twin(
    client: redis.Redis,
    *,
    patience: float,
    socket_timeout: float,
    pool: RedisPool = DEFAULT_POOL,
    name: str | None = None,
) -> aioredis.Redis:
    """An asyncio client to the Redis server a blocking `client` talks to (RQ hands its
    callbacks a blocking one)."""
    given = client.connection_pool.connection_kwargs
    names = ("host", "port", "db", "username", "password")
    kwargs: dict[str, Any] = {name: given[name] for name in names if name in given}
    if "path" in given:
        kwargs["unix_socket_path"] = given["path"]
    if issubclass(client.connection_pool.connection_class, redis.SSLConnection):
        kwargs.update(ssl=True, **{k: v for k, v in given.items() if k.startswith("ssl_")})
    retry = AsyncRetry(ExponentialBackoff(cap=_CAP, base=_BASE), retries_for(patience), RETRIED)
    if kwargs.pop("ssl", False):
        kwargs["connection_class"] = aioredis.SSLConnection
    connections = aioredis.BlockingConnectionPool(
        retry=retry, **kwargs, **_options(socket_timeout, pool, name)
    )
    return aioredis.Redis.from_pool(connections)
