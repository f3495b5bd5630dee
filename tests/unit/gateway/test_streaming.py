"""The public StreamingRecognize at the gateway, over real gRPC with the gateway's interceptors,
in front of an in-process scheduler and a fake transcriber (tests/unit/scheduler/conftest.py):
bad first messages, a whole session, a second config, the idle timeout and the audio quota."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass

import grpc
import pytest
import redis.asyncio as aioredis
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from devsupport.mesh import RedisServer
from sayit.common.v1 import job_pb2, streaming_pb2
from sayit.common.v1 import transcription_pb2 as tpb
from sayit.speech.v1 import speech_service_pb2 as pb
from sayit.speech.v1 import speech_service_pb2_grpc as pb_grpc
from services.common.call_limits import CallCaps, CallLimits
from services.common.interceptors import Drain, ServiceInterceptor
from services.gateway import auth
from services.gateway.config import load_config
from services.gateway.interceptor import EdgeInterceptor
from services.gateway.quotas import Limiter, Limits
from services.gateway.servicer import SpeechServicer
from services.gateway.streaming import FIRST_MESSAGE
from tests.unit.scheduler.conftest import Harness, harness, settings, until  # noqa: F401

pytestmark = pytest.mark.redis

SECOND = 32000  # 16 kHz mono LINEAR16
CHUNK = SECOND // 10
IDLE_SECONDS = 0.5
QUOTA_SECONDS = 2.5


@dataclass
class Gateway:
    stub: pb_grpc.SpeechServiceStub
    limiter: Limiter
    servicer: SpeechServicer
    caps: CallLimits
    addr: str


@pytest.fixture
async def gateway(harness: Harness, redis_server: RedisServer) -> AsyncIterator[Gateway]:  # noqa: F811
    config = load_config(
        {
            "SAYIT_AUTH": "off",
            "SAYIT_SCHEDULER_ADDR": harness.addr,
            "SAYIT_STREAM_IDLE_SECONDS": str(IDLE_SECONDS),
            "SAYIT_INTERNAL_TLS": "off",
        }
    )
    client = aioredis.Redis.from_url(redis_server.url)
    limits = Limits(requests_per_second=0, request_burst=1, audio_seconds_per_day=QUOTA_SECONDS)
    limiter = Limiter(client, f"q{uuid.uuid4().hex[:6]}", limits, {})
    channel = grpc.aio.insecure_channel(harness.addr)
    caps = CallLimits(CallCaps(max_streams_per_tenant=10), tenant_of=lambda: auth.current().tenant)
    server = grpc.aio.server(
        interceptors=[ServiceInterceptor(Drain(), edge=True), EdgeInterceptor(None, limiter), caps]
    )
    servicer = SpeechServicer(config, channel, limiter)
    pb_grpc.add_SpeechServiceServicer_to_server(servicer, server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    caller = grpc.aio.insecure_channel(f"127.0.0.1:{port}")
    try:
        yield Gateway(
            pb_grpc.SpeechServiceStub(caller), limiter, servicer, caps, f"127.0.0.1:{port}"
        )
    finally:
        await caller.close()
        await server.stop(0)
        await channel.close()
        await client.aclose()


def good_config(**fields: object) -> streaming_pb2.StreamingRecognitionConfig:
    config = streaming_pb2.StreamingRecognitionConfig(
        config=tpb.TranscriptionConfig(language_code="ko"),
        encoding=streaming_pb2.AUDIO_ENCODING_LINEAR16,
        sample_rate_hertz=16000,
        interim_results=False,
    )
    for name, value in fields.items():
        target, _, leaf = name.rpartition("__")
        message = config
        for part in filter(None, target.split("__")):
            message = getattr(message, part)
        setattr(message, leaf, value)
    return config


def messages(
    config: streaming_pb2.StreamingRecognitionConfig | None, seconds: float
) -> Iterable[pb.StreamingRecognizeRequest]:
    if config is not None:
        yield pb.StreamingRecognizeRequest(streaming_config=config)
    for _ in range(round(seconds * 10)):
        yield pb.StreamingRecognizeRequest(audio_content=b"\0" * CHUNK)


async def stream(
    gateway: Gateway, requests: AsyncIterator[pb.StreamingRecognizeRequest]
) -> tuple[list[pb.StreamingRecognizeResponse], grpc.aio.AioRpcError | None]:
    call = gateway.stub.StreamingRecognize(requests, timeout=20)
    responses = []
    try:
        async for response in call:
            responses.append(response)
    except grpc.aio.AioRpcError as error:
        return responses, error
    return responses, None


async def sent(
    items: Iterable[pb.StreamingRecognizeRequest], hold: float = 0.0
) -> AsyncIterator[pb.StreamingRecognizeRequest]:
    """The messages, then (with `hold`) the stream kept open that long without audio."""
    for item in items:
        yield item
    if hold:
        await asyncio.sleep(hold)


def bad_field(error: grpc.aio.AioRpcError) -> str:
    status = rpc_status.from_call(error)  # type: ignore[arg-type]
    assert status is not None
    request = error_details_pb2.BadRequest()
    assert any(detail.Unpack(request) for detail in status.details)
    return request.field_violations[0].field


def retry_seconds(error: grpc.aio.AioRpcError) -> float:
    status = rpc_status.from_call(error)  # type: ignore[arg-type]
    assert status is not None
    retry = error_details_pb2.RetryInfo()
    assert any(detail.Unpack(retry) for detail in status.details)
    return retry.retry_delay.seconds + retry.retry_delay.nanos / 1e9


def finals(responses: list[pb.StreamingRecognizeResponse]) -> list[str]:
    return [r.result.text for r in responses if r.result.is_final]


@pytest.mark.parametrize(
    ("config", "field"),
    [
        (None, "streaming_config"),  # audio before the config
        (good_config(sample_rate_hertz=0), "streaming_config.sample_rate_hertz"),
        (good_config(sample_rate_hertz=96000), "streaming_config.sample_rate_hertz"),
        (good_config(encoding=0), "streaming_config.encoding"),
        (good_config(encoding=7), "streaming_config.encoding"),
        (good_config(audio_channel_count=3), "streaming_config.audio_channel_count"),
        (
            good_config(endpointing__silence_seconds=0.1),
            "streaming_config.endpointing.silence_seconds",
        ),
        (
            good_config(endpointing__max_utterance_seconds=31),
            "streaming_config.endpointing.max_utterance_seconds",
        ),
        (
            good_config(endpointing__speech_threshold=1.5),
            "streaming_config.endpointing.speech_threshold",
        ),
        (good_config(config__language_code="xx"), "streaming_config.config.language_code"),
        (good_config(config__model="large-v9"), "streaming_config.config.model"),
    ],
)
async def test_a_bad_first_message_is_invalid_argument_naming_the_field(
    gateway: Gateway,
    harness: Harness,  # noqa: F811
    config: streaming_pb2.StreamingRecognitionConfig | None,
    field: str,
) -> None:
    # One message, then the stream held open: the answer is to that message.
    responses, error = await stream(gateway, sent(messages(config, 0 if config else 0.1), hold=5))
    assert error is not None and not responses
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert bad_field(error) == field
    if config is None:
        assert error.details() == FIRST_MESSAGE
    assert "127.0.0.1" not in error.details()
    assert not harness.fake.setups  # no session reached the transcriber


async def test_a_session_through_the_gateway_is_a_job_with_every_final(
    gateway: Gateway,
    harness: Harness,  # noqa: F811
) -> None:
    responses, error = await stream(gateway, sent(messages(good_config(), 2.0)))
    assert error is None
    name = responses[0].job_name
    assert {r.job_name for r in responses} == {name}
    assert responses[0].WhichOneof("response") is None
    assert finals(responses) == ["안녕하세요.", "반갑습니다."]
    # The scheduler got the effective config (the served model written in).
    assert harness.fake.setups[0].streaming_config.config.model == "base"
    job = await harness.get(name, tenant=auth.DEFAULT_TENANT)
    assert job.state == job_pb2.JOB_STATE_SUCCEEDED
    assert job.transcript.text == "안녕하세요. 반갑습니다."
    assert await gateway.limiter.used_audio_seconds(auth.DEFAULT_TENANT) == pytest.approx(2.0)


async def test_a_second_config_ends_the_session_invalid_after_flushing(
    gateway: Gateway,
    harness: Harness,  # noqa: F811
) -> None:
    again = pb.StreamingRecognizeRequest(streaming_config=good_config())
    items = [*messages(good_config(), 1.0), again]
    responses, error = await stream(gateway, sent(items, hold=5))
    assert error is not None and error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert bad_field(error) == "streaming_config"
    assert finals(responses) == ["안녕하세요."]


async def test_no_audio_for_the_idle_time_ends_the_session_as_a_half_close(
    gateway: Gateway,
    harness: Harness,  # noqa: F811
) -> None:
    loop = asyncio.get_running_loop()
    began = loop.time()
    responses, error = await stream(gateway, sent(messages(good_config(), 1.0), hold=10))
    assert error is None
    assert loop.time() - began < 5  # ended by the idle timeout, not by the caller
    assert finals(responses) == ["안녕하세요."]
    job = await harness.get(responses[0].job_name, tenant=auth.DEFAULT_TENANT)
    assert job.state == job_pb2.JOB_STATE_SUCCEEDED


async def test_a_quota_that_runs_out_mid_session_flushes_then_ends_resource_exhausted(
    gateway: Gateway,
    harness: Harness,  # noqa: F811
) -> None:
    responses, error = await stream(gateway, sent(messages(good_config(), 4.0), hold=5))
    assert error is not None and error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert retry_seconds(error) > 0
    assert finals(responses) == ["안녕하세요.", "반갑습니다."]
    used = await gateway.limiter.used_audio_seconds(auth.DEFAULT_TENANT)
    assert used == pytest.approx(2.0)  # charged as it came; no more than the quota
    job = await harness.get(responses[0].job_name, tenant=auth.DEFAULT_TENANT)
    assert job.state == job_pb2.JOB_STATE_SUCCEEDED
    assert job.transcript.audio_duration_seconds == pytest.approx(2.0)
    # With the quota spent, the next session is refused before it opens.
    responses, error = await stream(gateway, sent(messages(good_config(), 0), hold=5))
    assert error is not None and error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert not responses and len(harness.fake.setups) == 1


async def test_a_draining_gateway_flushes_its_sessions_and_says_unavailable(
    gateway: Gateway,
    harness: Harness,  # noqa: F811
) -> None:
    async def requests() -> AsyncIterator[pb.StreamingRecognizeRequest]:
        for item in messages(good_config(), 1.0):
            yield item
        await asyncio.sleep(0.1)
        gateway.servicer.live.drain()  # SIGTERM's draining hook
        await asyncio.sleep(5)

    responses, error = await stream(gateway, requests())
    assert error is not None and error.code() == grpc.StatusCode.UNAVAILABLE
    assert "shutting down" in error.details() and responses[0].job_name in error.details()
    assert finals(responses) == ["안녕하세요."]
    job = await harness.get(responses[0].job_name, tenant=auth.DEFAULT_TENANT)
    assert job.state == job_pb2.JOB_STATE_SUCCEEDED


async def test_a_caller_that_goes_away_cancels_the_session_through_the_gateway(
    gateway: Gateway,
    harness: Harness,  # noqa: F811
) -> None:
    call = gateway.stub.StreamingRecognize(sent(messages(good_config(), 1.0), hold=30), timeout=20)
    name = (await call.read()).job_name
    await call.read()  # the first utterance has begun
    call.cancel()
    await until(lambda: harness.record(name)[b"state"] == b"CANCELLED")
    await until(lambda: harness.fake.sessions_cancelled == 1)


async def test_sessions_count_against_the_tenants_stream_cap(
    gateway: Gateway,
    harness: Harness,  # noqa: F811
) -> None:
    gateway.caps.caps = CallCaps(max_streams_per_tenant=2)
    calls = []
    for _ in range(2):
        call = gateway.stub.StreamingRecognize(sent(messages(good_config(), 0.1), hold=5))
        await call.read()
        calls.append(call)
    _, error = await stream(gateway, sent(messages(good_config(), 0), hold=5))
    assert error is not None and error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert "already has 2 open streams" in error.details()
    assert retry_seconds(error) > 0
    for call in calls:
        call.cancel()


async def test_a_session_near_its_deadline_is_flushed_and_its_job_kept(
    gateway: Gateway,
    harness: Harness,  # noqa: F811
) -> None:
    async def paced() -> AsyncIterator[pb.StreamingRecognizeRequest]:
        # Never idle, and within the quota: 100 ms of audio every 150 ms.
        for item in messages(good_config(), 2.0):
            yield item
            await asyncio.sleep(0.15)

    call = gateway.stub.StreamingRecognize(paced(), timeout=3)
    responses = []
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        async for response in call:
            responses.append(response)
    assert raised.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    assert "reached its deadline" in raised.value.details()
    assert finals(responses) == ["안녕하세요."]
    job = await harness.get(responses[0].job_name, tenant=auth.DEFAULT_TENANT)
    assert job.state == job_pb2.JOB_STATE_SUCCEEDED
