"""SayIt's Redis users (services.common.redis_acl) against a real redis-server with the ACL file:
each service's user does its own work and is refused (NOPERM) what belongs to others."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
import redis.asyncio as aioredis
from redis.exceptions import AuthenticationError, NoPermissionError

from devsupport.mesh import RedisServer
from services.gateway.quotas import Limiter, Limits, connect
from services.jobs.schema import Keys

pytestmark = pytest.mark.redis

# Keys of the scheduler's and workers' job model, and of the gateway's quotas.
JOB = "sayit:job:acl-test"
QUEUE = "rq:queue:sayit-default"
QUOTA = "sayit:quota:acme:requests"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """A Redis of this module's own: the tests read its ACL LOG."""
    redis_server = RedisServer(tmp_path_factory.mktemp("acl")).start()
    yield redis_server
    redis_server.stop()


def as_user(server: RedisServer, user: str) -> redis.Redis:
    return redis.Redis.from_url(server.url_for(user), socket_timeout=2)


def refused(call: object, *args: object) -> str:
    """The NOPERM message Redis answers `call(*args)` with."""
    with pytest.raises(NoPermissionError) as caught:
        call(*args)  # type: ignore[operator]
    return str(caught.value)


def test_without_credentials_nobody_gets_in(server: RedisServer) -> None:
    anonymous = redis.Redis(port=server.port, socket_timeout=2)
    with pytest.raises(AuthenticationError):
        anonymous.ping()
    with pytest.raises(AuthenticationError):
        redis.Redis(port=server.port, username="default", password="", socket_timeout=2).ping()
    with pytest.raises(AuthenticationError):
        redis.Redis(port=server.port, username="gateway", password="guess").ping()


def test_gateway_is_refused_jobs_queues_and_server_commands(server: RedisServer) -> None:
    gateway = as_user(server, "gateway")
    assert "keys" in refused(gateway.hset, JOB, "state", "SUCCEEDED")
    # Writing RQ's keys would be code execution on the workers: the gateway cannot.
    assert "rpush" in refused(gateway.rpush, QUEUE, "evil")
    assert "keys" in refused(gateway.hset, "rq:job:evil", "data", "x")
    assert "config" in refused(gateway.config_get, "maxmemory")
    assert "flushall" in refused(gateway.flushall)
    assert "eval" in refused(gateway.eval, "return 1", 0)
    assert "keys" in refused(gateway.keys, "*")
    refused(gateway.publish, "rq:pubsub:worker-q1", '{"command": "shutdown"}')
    assert "acl|setuser" in refused(gateway.execute_command, "ACL", "SETUSER", "gateway", "+@all")
    # A script runs with its caller's rights: EVALSHA does not widen them.
    sha = gateway.script_load("return redis.call('HSET', KEYS[1], 'state', 'x')")
    with pytest.raises(redis.exceptions.ResponseError, match=r"(?i)no permissions"):
        gateway.evalsha(sha, 1, JOB)
    assert not as_user(server, "admin").exists(JOB, "rq:job:evil", QUEUE)


async def test_gateway_runs_its_quota_script(server: RedisServer) -> None:
    client = connect(server.url_for("gateway"))
    try:
        defaults = Limits(requests_per_second=1, request_burst=2, audio_seconds_per_day=100)
        limiter = Limiter(client, "sayit", defaults, {})
        await limiter.take_request("acme")
        await limiter.charge_audio("acme", 30)
        assert await limiter.used_audio_seconds("acme") == 30
    finally:
        await client.aclose()
    assert as_user(server, "admin").hget(QUOTA, "tokens") is not None


def test_worker_is_refused_quotas_and_scheduler_keys(server: RedisServer) -> None:
    worker = as_user(server, "worker")
    assert "keys" in refused(worker.get, QUOTA)
    assert "keys" in refused(worker.set, "sayit:quota:acme:audio:2026-01-01", "0")
    assert "keys" in refused(worker.sadd, "sayit:active", "x")
    assert "keys" in refused(worker.set, "sayit:idem:acme:x", "job")
    assert "config" in refused(worker.config_set, "maxmemory-policy", "allkeys-lru")
    assert "flushdb" in refused(worker.flushdb)
    assert "shutdown" in refused(worker.shutdown)
    # Its own: chunk state, RQ's queues.
    worker.hset(JOB, "state", "RUNNING")
    worker.rpush(QUEUE, "job-1")
    worker.delete(JOB, QUEUE)


def test_scheduler_is_refused_quotas_and_server_commands(server: RedisServer) -> None:
    scheduler = as_user(server, "scheduler")
    assert "keys" in refused(scheduler.get, QUOTA)
    assert "config" in refused(scheduler.config_get, "*")
    assert "script|flush" in refused(scheduler.script_flush)
    assert "client|kill" in refused(scheduler.execute_command, "CLIENT", "KILL", "TYPE", "normal")
    assert "monitor" in refused(scheduler.execute_command, "MONITOR")
    # A key outside SayIt's and RQ's.
    assert "keys" in refused(scheduler.set, "other-app:data", "x")
    scheduler.hset(JOB, "state", "QUEUED")
    scheduler.publish("rq:pubsub:worker-q1", "{}")
    scheduler.delete(JOB)


def test_denials_are_in_the_acl_log(server: RedisServer) -> None:
    """What the test meshes check on the way out (devsupport.mesh.running)."""
    as_user(server, "admin").acl_log_reset()
    assert server.denials() == []
    refused(as_user(server, "worker").get, QUOTA)
    [entry] = server.denials()
    assert (entry["username"], entry["object"], entry["reason"]) == ("worker", QUOTA, "key")


async def test_a_restarted_redis_keeps_the_users_and_every_transaction(tmp_path: Path) -> None:
    """Redis replays its append-only file as the default user; a transaction (the job store
    creates jobs in MULTI/EXEC) must survive that although nobody may log in as it."""
    redis_server = RedisServer(tmp_path, appendonly=True).start()
    try:
        before = redis_server.url_for("scheduler")
        client = aioredis.Redis.from_url(before)
        async with client.pipeline(transaction=True) as pipe:
            pipe.hset(Keys().record("x"), "state", "QUEUED").sadd(Keys().active(), "x")
            await pipe.execute()
        await client.aclose()
        redis_server.restart()
        assert redis_server.url_for("scheduler") == before
        client = aioredis.Redis.from_url(before)
        assert await client.hget(Keys().record("x"), "state") == b"QUEUED"
        assert await client.smembers(Keys().active()) == {b"x"}
        await client.aclose()
        with pytest.raises(AuthenticationError):
            redis.Redis(port=redis_server.port, socket_timeout=2).ping()
    finally:
        redis_server.stop()
