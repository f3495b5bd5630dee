"""A scheduler in this test process, over real gRPC, on a private Redis, in front of a fake
transcriber (tests.support.fake_transcriber): each of its rules runs in well under a second."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

import grpc
import pytest
import redis

from devsupport.mesh import RedisServer
from sayit.common.v1 import audio_pb2, job_pb2
from sayit.common.v1 import transcription_pb2 as tpb
from sayit.scheduler.v1 import scheduler_service_pb2 as pb
from sayit.scheduler.v1 import scheduler_service_pb2_grpc as pb_grpc
from services.common.effective_config import effective_config
from services.common.interceptors import Drain, ServiceInterceptor
from services.jobs.schema import Keys
from services.scheduler import app
from services.scheduler.config import load_config
from tests.support.fake_transcriber import FakeTranscriber, Script, serve

pytestmark = pytest.mark.redis


@dataclass
class Harness:
    scheduler: app.Scheduler
    stub: pb_grpc.SchedulerServiceStub
    fake: FakeTranscriber
    redis: redis.Redis
    keys: Keys
    addr: str = ""  # the scheduler's address (a gateway in the test calls it)

    async def submit(
        self,
        content: bytes = b"fake audio",
        seconds: float = 8.0,
        *,
        tenant: str = "acme",
        wait: bool = False,
        queue: bool = False,
        idempotency_key: str = "",
        language: str = "ko",
        deadline_seconds: float = 10.0,
    ) -> job_pb2.TranscriptionJob:
        """SubmitJob as the gateway sends it: the effective config and the probed duration."""
        request = pb.SubmitJobRequest(
            tenant=tenant,
            audio=audio_pb2.Audio(content=content, filename="clip.wav"),
            config=effective_config(tpb.TranscriptionConfig(language_code=language), "base"),
            audio_duration_seconds=seconds,
            wait_if_short=wait,
            routing_policy=pb.ROUTING_POLICY_QUEUE if queue else pb.ROUTING_POLICY_AUTO,
            idempotency_key=idempotency_key,
        )
        reply = await self.stub.SubmitJob(request, timeout=deadline_seconds)
        return reply.job

    async def get(self, name: str, tenant: str = "acme") -> job_pb2.TranscriptionJob:
        reply = await self.stub.GetJob(
            pb.GetJobRequest(tenant=tenant, job_id=name.removeprefix("jobs/")), timeout=5
        )
        return reply.job

    async def events(self, name: str, tenant: str = "acme") -> list[str]:
        request = pb.WatchJobRequest(tenant=tenant, job_id=name.removeprefix("jobs/"))
        return [
            str(r.event.WhichOneof("kind")) async for r in self.stub.WatchJob(request, timeout=5)
        ]

    def record(self, name: str) -> dict[bytes, bytes]:
        return self.redis.hgetall(self.keys.record(name.removeprefix("jobs/")))  # type: ignore[return-value]


async def until(condition: Callable[[], object], within: float = 3.0) -> None:
    """Wait until `condition()` holds (fails the test after `within` seconds)."""
    deadline = asyncio.get_running_loop().time() + within
    while not condition():
        assert asyncio.get_running_loop().time() < deadline, "condition never met"
        await asyncio.sleep(0.01)


@pytest.fixture
def settings() -> dict[str, str]:
    """Scheduler settings a test may change before `harness` builds the scheduler."""
    return {
        "SAYIT_DIRECT_SLOTS": "1",
        "SAYIT_DIRECT_AHEAD": "0",
        "SAYIT_DIRECT_WAIT_SECONDS": "0",
        "SAYIT_RESULT_CACHE_TTL_SECONDS": "0",
        "SAYIT_LOG_FORMAT": "json",
        # The harness serves in-process without TLS; identity checks have their own tests.
        "SAYIT_INTERNAL_TLS": "off",
    }


@pytest.fixture
async def harness(redis_server: RedisServer, settings: dict[str, str]) -> AsyncIterator[Harness]:
    client = redis_server.client()
    client.flushdb()
    fake = FakeTranscriber(Script())
    fake_server, fake_addr = await serve(fake)
    prefix = f"t{uuid.uuid4().hex[:6]}"
    config = load_config(
        {
            "SAYIT_REDIS_URL": redis_server.url,
            "SAYIT_REDIS_PREFIX": prefix,
            "SAYIT_TRANSCRIBER_ADDR": fake_addr,
            **settings,
        }
    )
    scheduler = app.build(config)
    await scheduler.start(reconcile=False)
    server = grpc.aio.server(interceptors=[ServiceInterceptor(Drain())])
    pb_grpc.add_SchedulerServiceServicer_to_server(scheduler.servicer, server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{port}")
    try:
        yield Harness(
            scheduler,
            pb_grpc.SchedulerServiceStub(channel),
            fake,
            client,
            Keys(prefix),
            f"127.0.0.1:{port}",
        )
    finally:
        await channel.close()
        await server.stop(0)
        await scheduler.close()
        # Work handed to threads (RQ, planning) ends before the next test empties Redis.
        await asyncio.to_thread(scheduler.executor.shutdown, True)
        await fake_server.stop(0)
