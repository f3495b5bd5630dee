"""Per-tenant limits (services.gateway.quotas) and queue backpressure
(services.scheduler.admission.backpressure) against a real Redis and real RQ queues and workers."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import redis
import redis.asyncio as aioredis
from prometheus_client import REGISTRY
from rq import Queue, SimpleWorker
from rq.serializers import JSONSerializer

from devsupport.mesh import RedisServer
from services.common.errors import ResourceExhausted, Unavailable
from services.common.names import new_job_id
from services.gateway.keys import TenantLimits
from services.gateway.quotas import Limiter, Limits, connect
from services.gateway.store_outage import REFUSED_MESSAGE, StoreOutage
from services.jobs.queue import DEFAULT, HIGH
from services.jobs.schema import Keys
from services.scheduler.admission.backpressure import Backpressure

pytestmark = pytest.mark.redis


@pytest.fixture
async def client(redis_server: RedisServer) -> AsyncIterator[aioredis.Redis]:
    connection = aioredis.Redis.from_url(redis_server.url)
    yield connection
    await connection.aclose()


def limiter(client: aioredis.Redis, prefix: str, **own: float) -> Limiter:
    defaults = Limits(requests_per_second=0, request_burst=1, audio_seconds_per_day=0)
    return Limiter(client, prefix, defaults, {"acme": TenantLimits(**own)})  # type: ignore[arg-type]


async def test_token_bucket_allows_the_burst_then_the_rate(client: aioredis.Redis) -> None:
    prefix = new_job_id()[:8]
    limits = limiter(client, prefix, requests_per_second=4, request_burst=3)
    for _ in range(3):
        await limits.take_request("acme")
    with pytest.raises(ResourceExhausted) as caught:
        await limits.take_request("acme")
    assert 0 < caught.value.retry_after_seconds <= 0.25  # type: ignore[operator]
    assert caught.value.violations[0].subject == "tenant:acme"
    # Other tenants have the (unlimited) defaults.
    for _ in range(20):
        await limits.take_request("globex")
    await asyncio.sleep(caught.value.retry_after_seconds + 0.02)  # type: ignore[operator]
    await limits.take_request("acme")


async def test_replicas_share_one_bucket(client: aioredis.Redis, redis_server: RedisServer) -> None:
    prefix = new_job_id()[:8]
    other_client = aioredis.Redis.from_url(redis_server.url)
    replicas = [
        limiter(client, prefix, requests_per_second=0.01, request_burst=10),
        limiter(other_client, prefix, requests_per_second=0.01, request_burst=10),
    ]
    outcomes = await asyncio.gather(
        *(replicas[i % 2].take_request("acme") for i in range(30)), return_exceptions=True
    )
    assert sum(o is None for o in outcomes) == 10
    assert all(isinstance(o, ResourceExhausted) for o in outcomes if o is not None)
    await other_client.aclose()


async def test_audio_quota_charges_refunds_and_refuses(client: aioredis.Redis) -> None:
    prefix = new_job_id()[:8]
    limits = limiter(client, prefix, audio_seconds_per_day=100)
    await limits.charge_audio("acme", 60.5)
    assert await limits.used_audio_seconds("acme") == pytest.approx(60.5)
    with pytest.raises(ResourceExhausted) as caught:
        await limits.charge_audio("acme", 40)
    assert "has used 60 of its 100 audio seconds today" in caught.value.message
    assert 0 < caught.value.retry_after_seconds <= 86400  # type: ignore[operator]
    assert await limits.used_audio_seconds("acme") == pytest.approx(60.5)  # nothing charged
    await limits.refund_audio("acme", 20.5)
    await limits.charge_audio("acme", 59.9)
    assert await limits.used_audio_seconds("acme") == pytest.approx(99.9)
    with pytest.raises(ResourceExhausted) as whole:
        await limits.charge_audio("acme", 101)
    assert "more than tenant 'acme''s whole daily quota" in whole.value.message
    assert whole.value.retry_after_seconds is None
    ttl = await client.ttl(f"{prefix}:quota:acme:audio:{time.strftime('%Y-%m-%d', time.gmtime())}")
    assert 86400 < ttl <= 2 * 86400


def store_errors(outcome: str) -> float:
    value = REGISTRY.get_sample_value(
        "sayit_gateway_quota_store_errors_total", {"outcome": outcome}
    )
    return value or 0.0


async def test_limits_fail_closed_when_redis_is_down(tmp_path: Path) -> None:
    """The default: the store down refuses with UNAVAILABLE and a retry hint (fast), and the
    limits are checked again once it is back."""
    own = RedisServer(tmp_path / "redis").start()
    client = connect(own.url)
    limits = limiter(
        client, "x", requests_per_second=100, request_burst=5, audio_seconds_per_day=50
    )
    try:
        await limits.take_request("acme")
        own.kill()
        refused = store_errors("refused")
        started = time.monotonic()
        for attempt in (limits.take_request("acme"), limits.charge_audio("acme", 1.0)):
            with pytest.raises(Unavailable) as caught:
                await attempt
            assert caught.value.message == REFUSED_MESSAGE
            assert caught.value.retry_after_seconds == 2.0
            assert str(own.port) not in caught.value.message
        # Refunds never raise: the caller already has the refusal that asked for one.
        await limits.refund_audio("acme", 1.0)
        assert time.monotonic() - started < 4, "Redis being down must not stall every request"
        assert store_errors("refused") == refused + 2
        own.start()  # same port
        await limits.take_request("acme")
        await limits.charge_audio("acme", 1.0)
        assert await limits.used_audio_seconds("acme") == pytest.approx(1.0)
    finally:
        await client.aclose()
        own.stop()


async def test_limits_fail_open_when_told_to() -> None:
    dead = connect("redis://127.0.0.1:1/0")
    defaults = Limits(requests_per_second=0, request_burst=1, audio_seconds_per_day=0)
    own = TenantLimits(requests_per_second=0.001, request_burst=1, audio_seconds_per_day=1)
    limits = Limiter(dead, "x", defaults, {"acme": own}, StoreOutage(fail_open=True))
    let_through, refused = store_errors("let_through"), store_errors("refused")
    started = time.monotonic()
    for _ in range(3):
        await limits.take_request("acme")
        await limits.charge_audio("acme", 0.5)
    assert time.monotonic() - started < 3, "Redis being down must not stall every request"
    assert store_errors("let_through") == let_through + 6
    assert store_errors("refused") == refused


# --- backpressure --------------------------------------------------------------------------------


def slow_task(seconds: float) -> float:
    time.sleep(seconds)
    return seconds


def enqueue(queue: Queue, audio_seconds: float, func: str = "time.sleep", arg: float = 0.0) -> None:
    queue.enqueue_call(
        func, args=(arg,), job_id=new_job_id(), meta={"audio_seconds": audio_seconds}
    )


async def test_backpressure_estimates_from_rq(
    client: aioredis.Redis, redis_server: RedisServer
) -> None:
    sync = redis.Redis.from_url(redis_server.url)
    sync.flushdb()
    high = Queue(HIGH, connection=sync, serializer=JSONSerializer)
    default = Queue(DEFAULT, connection=sync, serializer=JSONSerializer)
    pressure = Backpressure(client, Keys("bp"), max_wait_seconds=60, default_rtf=0.5)

    # Nothing queued, no worker: admitted; the estimate starts from the default factor.
    await pressure.admit(DEFAULT, 1000)
    snapshot = await pressure.snapshot()
    assert snapshot is not None and not snapshot.measured and snapshot.real_time_factor == 0.5

    # Finished jobs measure the factor: 0.3 s of work for 6 s of audio = 0.05.
    for _ in range(3):
        enqueue(default, 6.0, arg=0.3)
    SimpleWorker([default], connection=sync, serializer=JSONSerializer).work(burst=True)
    pressure._snapshot = None
    snapshot = await pressure.snapshot()
    assert snapshot is not None and snapshot.measured
    assert snapshot.real_time_factor == pytest.approx(0.05, abs=0.02)

    # 2000 s queued on the default queue, 100 s on the high one; one live worker.
    for _ in range(4):
        enqueue(default, 500.0)
    enqueue(high, 100.0)
    worker = SimpleWorker([high, default], connection=sync, serializer=JSONSerializer)
    worker.register_birth()
    try:
        pressure._snapshot = None
        snapshot = await pressure.snapshot()
        assert snapshot is not None
        assert snapshot.queues[DEFAULT].queued_jobs == 4
        assert snapshot.ahead_of(HIGH) == pytest.approx(100)
        assert snapshot.ahead_of(DEFAULT) == pytest.approx(2100)
        assert snapshot.workers(DEFAULT) == 1
        rtf = snapshot.real_time_factor
        assert snapshot.wait_seconds(DEFAULT) == pytest.approx(2100 * rtf)
        # 2100 s x 0.05 = 105 s > 60 s: the default queue refuses, the high queue admits.
        with pytest.raises(ResourceExhausted) as caught:
            await pressure.admit(DEFAULT, 10)
        assert "the transcription queue is full" in caught.value.message
        assert caught.value.retry_after_seconds == pytest.approx(2100 * rtf - 60, abs=1)
        assert caught.value.violations[0].subject == f"queue:{DEFAULT}"
        await pressure.admit(HIGH, 10)
    finally:
        worker.register_death()
    # A dead worker is not counted (none counts as one).
    pressure._snapshot = None
    snapshot = await pressure.snapshot()
    assert snapshot is not None and snapshot.queues[DEFAULT].live_workers == 0


async def test_backpressure_off_and_redis_down() -> None:
    dead = connect("redis://127.0.0.1:1/0")
    await Backpressure(dead, Keys(), max_wait_seconds=0, default_rtf=1).admit(DEFAULT, 1e6)
    await Backpressure(dead, Keys(), max_wait_seconds=1, default_rtf=1).admit(DEFAULT, 1e6)
