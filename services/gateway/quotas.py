"""Per-tenant request rate (token bucket) and audio seconds per day, kept in Redis.

Every check-and-charge is one Lua script, so any number of gateway replicas share the same
buckets and counters without races; the script reads Redis' clock, so replicas' clocks do not
matter for the bucket. Days are UTC days. When Redis cannot be reached or errors, the request is
refused with UNAVAILABLE, or let through when SAYIT_QUOTA_FAIL_OPEN is set
(services.gateway.store_outage).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import redis.asyncio as aioredis
import redis.exceptions
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from services.common.errors import QuotaViolation, ResourceExhausted
from services.common.redis_client import DEFAULT_POOL, RedisPool
from services.gateway.keys import TenantLimits
from services.gateway.store_outage import StoreOutage

DAY_SECONDS = 86400
OK, RATE_LIMITED, OVER_QUOTA = 0, 1, 2

# KEYS[1] the tenant's bucket (hash: tokens, ts), KEYS[2] the tenant's audio seconds today.
# ARGV: rate (tokens/s, 0 = no bucket), burst, tokens to take, audio limit (0 = none), audio
# seconds to charge (negative = refund), counter TTL.
# Returns {OK} after charging both, or {RATE_LIMITED, seconds until enough tokens} or
# {OVER_QUOTA, seconds used today} without charging anything. Numbers go back as strings:
# Redis would truncate Lua floats to integers.
SCRIPT = """
local now_parts = redis.call('TIME')
local now = tonumber(now_parts[1]) + tonumber(now_parts[2]) / 1000000
local rate, burst, take = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local limit, seconds, ttl = tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[6])
local tokens = burst
local bucket = rate > 0 and take > 0
if bucket then
  local state = redis.call('HMGET', KEYS[1], 'tokens', 'ts')
  tokens = tonumber(state[1]) or burst
  local last = tonumber(state[2]) or now
  tokens = math.min(burst, tokens + math.max(0, now - last) * rate)
  if tokens < take then
    return {1, tostring((take - tokens) / rate)}
  end
end
if limit > 0 and seconds > 0 then
  local used = tonumber(redis.call('GET', KEYS[2]) or '0')
  if used + seconds > limit then
    return {2, tostring(used)}
  end
end
if bucket then
  redis.call('HSET', KEYS[1], 'tokens', tostring(tokens - take), 'ts', tostring(now))
  redis.call('EXPIRE', KEYS[1], math.ceil(burst / rate) + 60)
end
if seconds ~= 0 and (limit > 0 or seconds < 0) then
  redis.call('INCRBYFLOAT', KEYS[2], seconds)
  redis.call('EXPIRE', KEYS[2], ttl)
end
return {0, '0'}
"""


def connect(url: str, pool: RedisPool = DEFAULT_POOL) -> aioredis.Redis:
    """A client that fails fast: with Redis down, a request is answered (refused, or let through
    when failing open) within a second instead of waiting through redis-py's retries. Its pool
    is bounded like every other (services.common.redis_client)."""
    connections = aioredis.BlockingConnectionPool.from_url(
        url,
        max_connections=pool.max_connections,
        timeout=pool.wait_seconds,
        socket_timeout=1.0,
        socket_connect_timeout=1.0,
        retry=Retry(NoBackoff(), 0),
        health_check_interval=10,
        client_name="sayit-gateway",
        driver_info=None,  # no CLIENT SETINFO, which its Redis user may not run
    )
    return aioredis.Redis.from_pool(connections)


@dataclass(frozen=True)
class Limits:
    """One tenant's limits; 0 = unlimited."""

    requests_per_second: float
    request_burst: int
    audio_seconds_per_day: float

    def merged(self, own: TenantLimits | None) -> Limits:
        if own is None:
            return self
        return Limits(
            requests_per_second=_pick(own.requests_per_second, self.requests_per_second),
            request_burst=int(_pick(own.request_burst, self.request_burst)),
            audio_seconds_per_day=_pick(own.audio_seconds_per_day, self.audio_seconds_per_day),
        )

    @property
    def any(self) -> bool:
        return self.requests_per_second > 0 or self.audio_seconds_per_day > 0


def _pick(own: float | None, default: float) -> float:
    return default if own is None else own


class Limiter:
    def __init__(
        self,
        client: aioredis.Redis,
        prefix: str,
        defaults: Limits,
        per_tenant: Mapping[str, TenantLimits],
        outage: StoreOutage | None = None,
    ) -> None:
        self._client: Any = client
        self._outage = outage or StoreOutage(fail_open=False)
        self._script = client.register_script(SCRIPT)
        self._prefix = prefix
        self._defaults = defaults
        self._per_tenant = per_tenant

    def limits(self, tenant: str) -> Limits:
        return self._defaults.merged(self._per_tenant.get(tenant))

    async def take_request(self, tenant: str) -> None:
        """One request from the tenant's bucket; RESOURCE_EXHAUSTED when it is empty."""
        limits = self.limits(tenant)
        if limits.requests_per_second <= 0:
            return
        outcome, value = await self._run(tenant, limits, take=1, seconds=0.0)
        if outcome == RATE_LIMITED:
            wait = max(0.001, value)
            raise ResourceExhausted(
                f"tenant {tenant!r} is over its rate of {limits.requests_per_second:g} "
                f"requests/s (bursts of {_burst(limits)}); retry in {wait:.2f} s",
                retry_after_seconds=wait,
                violations=[
                    QuotaViolation(
                        f"tenant:{tenant}",
                        f"requests per second: {limits.requests_per_second:g} "
                        f"(burst {_burst(limits)})",
                    )
                ],
            )

    async def charge_audio(self, tenant: str, seconds: float) -> None:
        """Add the audio to the tenant's seconds today; RESOURCE_EXHAUSTED (nothing charged)
        when it would go over the daily quota."""
        limits = self.limits(tenant)
        limit = limits.audio_seconds_per_day
        if limit <= 0:
            return
        if seconds > limit:
            raise ResourceExhausted(
                f"the audio is {seconds:.0f} s long, more than tenant {tenant!r}'s whole daily "
                f"quota of {limit:.0f} audio seconds; split it or ask for a larger quota",
                violations=[
                    QuotaViolation(f"tenant:{tenant}", f"audio seconds per day: {limit:g}")
                ],
            )
        outcome, used = await self._run(tenant, limits, take=0, seconds=seconds)
        if outcome == OVER_QUOTA:
            reset = _seconds_to_midnight()
            raise ResourceExhausted(
                f"tenant {tenant!r} has used {used:.0f} of its {limit:.0f} audio seconds today "
                f"(UTC) and this audio is {seconds:.0f} s; the quota resets at 00:00 UTC, in "
                f"{_duration(reset)}",
                retry_after_seconds=reset,
                violations=[
                    QuotaViolation(f"tenant:{tenant}", f"audio seconds per day: {limit:g}")
                ],
            )

    async def refund_audio(self, tenant: str, seconds: float) -> None:
        """Give back audio seconds charged for a request that was not accepted after all."""
        limits = self.limits(tenant)
        if limits.audio_seconds_per_day > 0 and seconds > 0:
            try:
                await self._script_call(tenant, limits, take=0, seconds=-seconds)
            except redis.exceptions.RedisError as error:
                self._outage.refund_failed(tenant, error)

    async def _run(
        self, tenant: str, limits: Limits, *, take: int, seconds: float
    ) -> tuple[int, float]:
        """Check and charge; a store that fails refuses the request (or, failing open, lets it
        through as if within its limits)."""
        try:
            return await self._script_call(tenant, limits, take=take, seconds=seconds)
        except redis.exceptions.RedisError as error:
            # Every failure of the store is a RedisError: connection refused or reset, timeouts,
            # a pool with no free connection, an error reply (e.g. an ACL refusing the script).
            self._outage.check_failed(tenant, error)
            return OK, 0.0

    async def _script_call(
        self, tenant: str, limits: Limits, *, take: int, seconds: float
    ) -> tuple[int, float]:
        keys = [self._bucket_key(tenant), self._audio_key(tenant)]
        args = [
            limits.requests_per_second,
            _burst(limits),
            take,
            limits.audio_seconds_per_day,
            seconds,
            2 * DAY_SECONDS,
        ]
        outcome, value = await self._script(keys=keys, args=args)
        return int(outcome), float(value)

    def _bucket_key(self, tenant: str) -> str:
        return f"{self._prefix}:quota:{tenant}:requests"

    def _audio_key(self, tenant: str) -> str:
        day = datetime.now(UTC).strftime("%Y-%m-%d")
        return f"{self._prefix}:quota:{tenant}:audio:{day}"

    async def used_audio_seconds(self, tenant: str) -> float:
        value = await self._client.get(self._audio_key(tenant))
        return float(value or 0)


def _burst(limits: Limits) -> int:
    return max(1, limits.request_burst or math.ceil(limits.requests_per_second))


def _seconds_to_midnight() -> float:
    now = datetime.now(UTC)
    midnight = (now + timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0)
    return max(1.0, (midnight - now).total_seconds())


def _duration(seconds: float) -> str:
    hours, rest = divmod(int(seconds), 3600)
    return f"{hours} h {rest // 60} min" if hours else f"{rest // 60} min {rest % 60} s"
