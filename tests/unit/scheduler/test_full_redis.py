"""A Redis at its `maxmemory` (policy noeviction) refuses writes: a job it cannot take is
RESOURCE_EXHAUSTED with RetryInfo and a message without the Redis endpoint, and nothing of it is
left half-written, whether Redis fills up at submission or while its chunks are stored."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import grpc
import numpy as np
import pytest
import redis
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from devsupport.mesh import RedisServer
from sayit.common.v1 import job_pb2
from services.common.audio import SAMPLE_RATE, encode_flac, encode_wav
from services.scheduler import chunking
from tests.unit.scheduler.conftest import Harness, until

SECONDS = 60.0
CHUNK_SECONDS = 10.0


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    """A Redis of this test's own, small enough to fill."""
    server = RedisServer(tmp_path / "redis", maxmemory_mb=64).start()
    yield server
    server.stop()


@pytest.fixture
def settings(settings: dict[str, str]) -> dict[str, str]:
    # The audio budget is out of the way: these tests are about Redis itself refusing writes.
    return {
        **settings,
        "SAYIT_STORED_AUDIO_BUDGET_BYTES": str(10**12),
        "SAYIT_CHUNK_TARGET_SECONDS": str(CHUNK_SECONDS),
        "SAYIT_CHUNK_MIN_SECONDS": "15",
    }


def noise(seconds: float) -> np.ndarray:
    rng = np.random.default_rng(7)
    return rng.normal(0.0, 0.02, int(seconds * SAMPLE_RATE)).astype(np.float32)


def fill(client: redis.Redis, room: int) -> None:
    """Set maxmemory to what Redis holds now plus `room` bytes."""
    memory = client.info("memory")
    # Without the clients' buffers: a reply still in flight (the file the planner just read,
    # megabytes) is counted in used_memory and freed a moment later, which would add its size
    # to the room left.
    used = int(memory["used_memory"]) - int(memory["mem_clients_normal"])
    client.config_set("maxmemory", used + room)


def job_keys(client: redis.Redis, job_id: str) -> list[bytes]:
    return sorted(client.scan_iter(match=f"*{job_id}*"))  # type: ignore[arg-type]


def assert_retry_later(error: grpc.aio.AioRpcError, port: int) -> None:
    assert error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert error.details() == (
        "the job store is full: too much audio is waiting to be transcribed; retry in 30 s"
    )
    assert str(port) not in error.details() and "127.0.0.1" not in error.details()
    status = rpc_status.from_call(error)  # type: ignore[arg-type]
    assert status is not None
    retry = error_details_pb2.RetryInfo()
    assert any(detail.Unpack(retry) for detail in status.details)
    assert retry.retry_delay.seconds == 30


async def test_a_job_a_full_redis_cannot_take_is_refused_and_leaves_nothing(
    harness: Harness, redis_server: RedisServer
) -> None:
    content = encode_wav(noise(8.0))  # 256 kB, a single chunk
    fill(harness.redis, len(content) // 2)
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await harness.submit(content, 8.0, queue=True)
    assert_retry_later(raised.value, redis_server.port)
    assert harness.redis.zcard(harness.keys.tenant_jobs("acme")) == 0
    assert harness.redis.scard(harness.keys.active()) == 0
    assert harness.redis.scard(harness.keys.stored_audio()) == 0
    assert harness.redis.llen("rq:queue:sayit-high") == 0
    assert not list(harness.redis.scan_iter(match=f"{harness.keys.prefix}:job:*"))
    # Room again (a job finished): the same call succeeds.
    fill(harness.redis, 8 * len(content))
    job = await harness.submit(content, 8.0, queue=True)
    assert job.state == job_pb2.JOB_STATE_QUEUED


async def test_a_job_whose_first_event_does_not_fit_is_removed_again(
    harness: Harness, redis_server: RedisServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = harness.scheduler.store
    apply = store.apply

    async def fill_then_apply(job_id: str, change: object) -> object:
        # Redis fills up between the job's record and audio and its `accepted` event.
        fill(harness.redis, -100_000)
        return await apply(job_id, change)  # type: ignore[arg-type]

    monkeypatch.setattr(store, "apply", fill_then_apply)
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await harness.submit(encode_wav(noise(8.0)), 8.0, queue=True)
    assert_retry_later(raised.value, redis_server.port)
    # The record, its audio, its listing and its place among active jobs are gone again.
    assert not list(harness.redis.scan_iter(match=f"{harness.keys.prefix}:job:*"))
    assert harness.redis.zcard(harness.keys.tenant_jobs("acme")) == 0
    assert harness.redis.scard(harness.keys.active()) == 0
    assert harness.redis.scard(harness.keys.stored_audio()) == 0


async def test_redis_filling_up_while_chunks_are_stored_leaves_no_chunk_behind(
    harness: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    samples = noise(SECONDS)
    content = encode_wav(samples)  # 1.9 MB, cut into 6 chunks of ~10 s
    chunk = len(encode_flac(samples[: int(CHUNK_SECONDS * SAMPLE_RATE)]))
    cut = chunking.plan

    def plan_then_fill(*args: object) -> object:
        # Once the file is stored and cut, leave room for about two of its six chunks: Redis
        # fills up half-way through storing them.
        pieces = cut(*args)  # type: ignore[arg-type]
        assert len(pieces) == 6
        fill(harness.redis, int(2.5 * chunk))
        return pieces

    monkeypatch.setattr(chunking, "plan", plan_then_fill)
    job = await harness.submit(content, SECONDS, queue=True)
    job_id = job.name.removeprefix("jobs/")
    await until(lambda: harness.record(job_id).get(b"state") == b"FAILED", within=60.0)
    final = await harness.get(job.name)
    assert final.error.code == grpc.StatusCode.RESOURCE_EXHAUSTED.value[0]
    assert final.error.message == (
        "the job store was full when the audio was cut into chunks; submit it again later"
    )
    # No chunk, no file, nothing queued: only the record and its events remain.
    keys = job_keys(harness.redis, job_id)
    assert keys == sorted(
        [harness.keys.record(job_id).encode(), harness.keys.events(job_id).encode()]
    )
    assert harness.redis.scard(harness.keys.stored_audio()) == 0
    assert harness.redis.llen("rq:queue:sayit-default") == 0
    events = await harness.events(job.name)
    assert events[0] == "accepted" and events[-1] == "failed"
