"""Live sessions (StreamingRecognize) in the scheduler, in front of a fake transcriber that
speaks StreamTranscribe in the plan's message order: a session is a job whose finals are segment
events and which completes with the whole transcript; cancel, a caller that leaves, no free place,
a failing transcriber, drain and the reconciler."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import grpc
import pytest
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from sayit.common.v1 import job_pb2, streaming_pb2
from sayit.common.v1 import transcription_pb2 as tpb
from sayit.scheduler.v1 import scheduler_service_pb2 as pb
from services.common.effective_config import effective_config
from services.jobs import schema
from tests.unit.scheduler.conftest import Harness, until

SECOND = 32000  # bytes of one second of 16 kHz mono LINEAR16
CHUNK = SECOND // 10


def streaming_config(interim: bool = True) -> streaming_pb2.StreamingRecognitionConfig:
    return streaming_pb2.StreamingRecognitionConfig(
        config=effective_config(tpb.TranscriptionConfig(language_code="ko"), "base"),
        encoding=streaming_pb2.AUDIO_ENCODING_LINEAR16,
        sample_rate_hertz=16000,
        interim_results=interim,
    )


@dataclass
class Session:
    """One StreamingRecognize call: audio is put on `audio`; None half-closes."""

    call: grpc.aio.StreamStreamCall
    audio: asyncio.Queue[bytes | None] = field(default_factory=asyncio.Queue)
    name: str = ""

    async def send(self, seconds: float) -> None:
        for _ in range(round(seconds * 10)):
            await self.audio.put(b"\0" * CHUNK)

    async def rest(self) -> list[pb.StreamingRecognizeResponse]:
        """The responses up to the call's end (read, not iterated: the first was read)."""
        out = []
        while (response := await self.call.read()) is not grpc.aio.EOF:
            out.append(response)
        return out


async def open_session(h: Harness, tenant: str = "acme", interim: bool = True) -> Session:
    audio: asyncio.Queue[bytes | None] = asyncio.Queue()

    async def requests() -> AsyncIterator[pb.StreamingRecognizeRequest]:
        config = streaming_config(interim)
        header = pb.StreamingSessionHeader(tenant=tenant, streaming_config=config)
        yield pb.StreamingRecognizeRequest(header=header)
        while (chunk := await audio.get()) is not None:
            yield pb.StreamingRecognizeRequest(audio_content=chunk)

    call = h.stub.StreamingRecognize(requests(), timeout=20)
    return Session(call, audio)  # type: ignore[arg-type]


async def started(h: Harness, tenant: str = "acme", interim: bool = True) -> Session:
    """A session whose first response (only its job's name) has come."""
    session = await open_session(h, tenant, interim)
    first = await session.call.read()
    assert first.job_name.startswith("jobs/") and first.WhichOneof("response") is None
    session.name = first.job_name
    return session


def kinds(responses: list[pb.StreamingRecognizeResponse]) -> list[str]:
    out = []
    for r in responses:
        if r.HasField("speech_event"):
            out.append("started" if r.speech_event.type == 1 else "ended")
        else:
            out.append("final" if r.result.is_final else "interim")
    return out


def retry_seconds(error: grpc.aio.AioRpcError) -> float:
    status = rpc_status.from_call(error)  # type: ignore[arg-type]
    assert status is not None
    retry = error_details_pb2.RetryInfo()
    assert any(detail.Unpack(retry) for detail in status.details)
    return retry.retry_delay.seconds + retry.retry_delay.nanos / 1e9


async def test_a_session_is_a_direct_job_whose_finals_are_segments_and_that_completes(
    harness: Harness,
) -> None:
    session = await started(harness)
    record = harness.record(session.name)
    assert (record[b"state"], record[b"routing"], record[b"budget_s"]) == (
        b"RUNNING",
        b"DIRECT",
        b"0.0",
    )
    await session.send(3.0)
    await session.audio.put(None)
    responses = await session.rest()
    assert kinds(responses) == ["started", "interim", "ended", "final"] * 3
    assert {r.job_name for r in responses} == {session.name}
    assert [r.result.text for r in responses if r.result.is_final] == [
        "안녕하세요.",
        "반갑습니다.",
        "안녕하세요.",
    ]
    # The transcriber was set up with the caller's config and the job's id, and got every byte.
    (setup,) = harness.fake.setups
    assert setup.job_id == session.name.removeprefix("jobs/")
    assert setup.streaming_config == streaming_config()
    assert harness.fake.audio_bytes == 3 * SECOND
    job = await harness.get(session.name)
    assert (job.state, job.routing) == (job_pb2.JOB_STATE_SUCCEEDED, job_pb2.ROUTING_DIRECT)
    assert job.transcript.text == "안녕하세요. 반갑습니다. 안녕하세요."
    assert [s.id for s in job.transcript.segments] == [1, 2, 3]
    assert job.transcript.audio_duration_seconds == pytest.approx(3.0)
    assert job.progress.fraction == 1.0 and job.audio_duration_seconds == pytest.approx(3.0)
    events = await harness.events(session.name)
    assert events == ["accepted", "segment", "segment", "segment", "completed"]
    await until(lambda: harness.scheduler.sessions.places.busy == 0)


async def test_watchjob_from_a_second_caller_sees_the_finals_while_the_session_runs(
    harness: Harness,
) -> None:
    session = await started(harness, interim=False)
    await session.send(2.0)
    request = pb.WatchJobRequest(tenant="acme", job_id=session.name.removeprefix("jobs/"))
    watch = harness.stub.WatchJob(request, timeout=10)
    seen: list[str] = []
    async for reply in watch:
        if reply.event.HasField("segment"):
            seen.append(reply.event.segment.text)
        if len(seen) == 2:
            break
    assert seen == ["안녕하세요.", "반갑습니다."]
    assert (await harness.get(session.name)).state == job_pb2.JOB_STATE_RUNNING
    watch.cancel()
    await session.audio.put(None)
    assert kinds(await session.rest()) == ["started", "ended", "final"] * 2


async def test_audio_progress_is_written_as_it_comes_and_never_goes_backwards(
    harness: Harness,
) -> None:
    session = await started(harness, interim=False)
    await session.send(11.0)
    await until(lambda: float(harness.record(session.name).get(b"done_s", b"0")) >= 10.0)
    job = await harness.get(session.name)
    assert job.progress.fraction == 0.0 and job.progress.audio_seconds_total == 0.0
    await session.audio.put(None)
    await session.rest()
    job = await harness.get(session.name)
    assert job.progress.fraction == 1.0
    assert job.progress.audio_seconds_done == pytest.approx(11.0)


async def test_cancelling_the_job_ends_the_call_cancelled(harness: Harness) -> None:
    session = await started(harness)
    await session.send(1.0)
    for _ in range(4):  # one utterance: started, interim, ended, final
        await session.call.read()
    await harness.stub.CancelJob(
        pb.CancelJobRequest(tenant="acme", job_id=session.name.removeprefix("jobs/")), timeout=5
    )
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await session.rest()
    assert raised.value.code() == grpc.StatusCode.CANCELLED
    assert raised.value.details() == f"job {session.name} was cancelled"
    assert (await harness.get(session.name)).state == job_pb2.JOB_STATE_CANCELLED
    await until(lambda: harness.fake.sessions_cancelled == 1)
    await until(lambda: harness.scheduler.sessions.places.busy == 0)


async def test_a_caller_that_goes_away_cancels_the_session(harness: Harness) -> None:
    session = await started(harness)
    await session.send(1.0)
    await session.call.read()
    session.call.cancel()
    await until(lambda: harness.record(session.name)[b"state"] == b"CANCELLED")
    await until(lambda: harness.fake.sessions_cancelled == 1)
    await until(lambda: harness.scheduler.sessions.places.busy == 0)


async def test_a_caller_that_leaves_after_its_half_close_still_gets_its_job_completed(
    harness: Harness,
) -> None:
    release = asyncio.Event()
    harness.fake.script.release = release  # the transcriber holds the audio until released
    session = await started(harness, interim=False)
    await session.send(2.0)
    await session.audio.put(None)
    await until(lambda: harness.fake.started.is_set())
    await asyncio.sleep(0.2)  # the half-close reaches the scheduler
    session.call.cancel()
    await asyncio.sleep(0.2)
    release.set()
    await until(lambda: harness.record(session.name)[b"state"] == b"SUCCEEDED")
    job = await harness.get(session.name)
    assert job.transcript.text == "안녕하세요. 반갑습니다."
    assert harness.fake.sessions_cancelled == 0


async def test_no_free_place_is_resource_exhausted_with_a_retry_hint_and_no_job(
    harness: Harness,
) -> None:
    harness.scheduler.sessions.places.total = 1
    first = await started(harness)
    second = await open_session(harness)
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await second.call.read()
    assert raised.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert "every live session place is taken (1)" in raised.value.details()
    assert retry_seconds(raised.value) == 5.0
    assert harness.redis.zcard(harness.keys.tenant_jobs("acme")) == 1
    await first.audio.put(None)
    await first.rest()


async def test_a_transcriber_without_a_free_place_is_resource_exhausted_too(
    harness: Harness,
) -> None:
    harness.fake.script.refuse = (grpc.StatusCode.RESOURCE_EXHAUSTED, "every session is busy")
    session = await open_session(harness)
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await session.call.read()
    assert raised.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert retry_seconds(raised.value) > 0
    assert harness.redis.zcard(harness.keys.tenant_jobs("acme")) == 0
    assert harness.scheduler.sessions.places.busy == 0


async def test_a_transcriber_that_fails_mid_session_fails_the_job_without_addresses(
    harness: Harness,
) -> None:
    harness.fake.script.fail_after = (grpc.StatusCode.UNAVAILABLE, "Socket closed 10.0.0.7:50053")
    harness.fake.script.raw_status = True  # as gRPC itself would end it
    session = await started(harness)
    await session.send(1.0)
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await session.rest()
    assert raised.value.code() == grpc.StatusCode.UNAVAILABLE
    assert "10.0.0.7" not in raised.value.details()
    job = await harness.get(session.name)
    assert job.state == job_pb2.JOB_STATE_FAILED
    assert job.error.code == grpc.StatusCode.UNAVAILABLE.value[0]
    assert "10.0.0.7" not in job.error.message
    await until(lambda: harness.scheduler.sessions.places.busy == 0)


async def test_a_bad_first_message_is_invalid_argument(harness: Harness) -> None:
    async def requests() -> AsyncIterator[pb.StreamingRecognizeRequest]:
        yield pb.StreamingRecognizeRequest(audio_content=b"\0" * CHUNK)

    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await harness.stub.StreamingRecognize(requests(), timeout=5).read()
    assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT


async def test_draining_flushes_sessions_completes_their_jobs_and_tells_callers(
    harness: Harness,
) -> None:
    session = await started(harness, interim=False)
    await session.send(2.0)
    for _ in range(6):
        await session.call.read()
    await harness.scheduler.drain()
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await session.rest()
    assert raised.value.code() == grpc.StatusCode.UNAVAILABLE
    assert "shutting down" in raised.value.details() and session.name in raised.value.details()
    job = await harness.get(session.name)
    assert job.state == job_pb2.JOB_STATE_SUCCEEDED
    assert job.transcript.text == "안녕하세요. 반갑습니다."


async def test_the_reconciler_leaves_a_long_session_alone(harness: Harness) -> None:
    session = await started(harness, interim=False)
    job_id = session.name.removeprefix("jobs/")
    # Ten hours old: a budget computed from any length would have run out.
    harness.redis.hset(
        harness.keys.record(job_id), "created_ms", schema.now_ms() - 10 * 3600 * 1000
    )
    for _ in range(3):  # the taskless check needs two in a row
        await harness.scheduler.reconciler.once()
    assert harness.record(session.name)[b"state"] == b"RUNNING"
    await session.send(1.0)
    await session.audio.put(None)
    assert kinds(await session.rest()) == ["started", "ended", "final"]
    assert (await harness.get(session.name)).state == job_pb2.JOB_STATE_SUCCEEDED
