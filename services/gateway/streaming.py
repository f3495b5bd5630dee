"""The public StreamingRecognize: a live session's first message (its config) validated, its
audio charged to the tenant's daily quota as it arrives and forwarded to the scheduler (which
runs the session as a job, services.scheduler.sessions), its results sent back.

- The first message must be `streaming_config`, checked here: encoding, sample rate (8000 to
  48000), channels (0 to 2), endpointing ranges, and the TranscriptionConfig as for files (the
  effective config goes on). An `audio_content` first, or a second `streaming_config`, is
  INVALID_ARGUMENT naming the field.
- Quota: audio is charged in steps of QUOTA_STEP_SECONDS, each step before the audio it covers
  is forwarded (the first before the session opens, so a tenant with nothing left is refused at
  once); what was charged beyond the audio received is given back at the end. When the quota
  runs out mid-session, no more audio is forwarded: the session is half-closed, its last finals
  are sent, and the call ends RESOURCE_EXHAUSTED with the quota's retry hint.
- Idle: no audio for SAYIT_STREAM_IDLE_SECONDS ends the session as a half-close would (finals
  flushed, the call ends OK).
- Any error ending the session after it opened (quota, a bad later message, an oversized audio
  message) ends it the same way: what was heard is flushed and kept in the job, then the call
  ends with the error.
- The gateway's stream caps (services.common.call_limits) count sessions as streams.
- SIGTERM: sessions stop taking audio and are flushed like a half-close; their callers get the
  last finals, then UNAVAILABLE (open a new session), within the drain's grace period.
- Length: no limit but the call's deadline (the caller's, else
  SAYIT_GATEWAY_STREAM_TIMEOUT_SECONDS, 6 h): shortly before it (DEADLINE_FLUSH_SECONDS, at most
  a tenth of it) the session is flushed the same way and ends DEADLINE_EXCEEDED naming its job,
  which holds the transcript.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import grpc

from sayit.common.v1 import streaming_pb2 as stpb
from sayit.scheduler.v1 import scheduler_service_pb2 as spb
from sayit.scheduler.v1 import scheduler_service_pb2_grpc as spb_grpc
from sayit.speech.v1 import speech_service_pb2 as pb
from services.common import logs
from services.common.channels import call_timeout
from services.common.errors import (
    DeadlineExceeded,
    FieldViolation,
    InvalidArgument,
    QuotaViolation,
    SayItError,
    Unavailable,
)
from services.common.errors import ResourceExhausted as TooLarge
from services.gateway import auth, convert
from services.gateway.config import GatewayConfig
from services.gateway.quotas import Limiter

log = logs.get_logger("sayit.gateway")

FIRST_MESSAGE = "the first message must be streaming_config; audio_content comes after it"
MIN_SAMPLE_RATE, MAX_SAMPLE_RATE = 8000, 48000
MAX_CHANNELS = 2
SILENCE_SECONDS = (0.2, 5.0)
MAX_UTTERANCE_SECONDS = (5.0, 30.0)
QUOTA_STEP_SECONDS = 1.0
# One audio message: 100 ms is usual; a second of 48 kHz stereo float is 384 kB.
MAX_AUDIO_MESSAGE_BYTES = 1024 * 1024
HALF_CLOSE_GRACE_SECONDS = 0.1
# Before the call's deadline, the time left to flush the last utterance (at most a tenth of it).
DEADLINE_FLUSH_SECONDS = 15.0
BYTES_PER_SAMPLE = {stpb.AUDIO_ENCODING_LINEAR16: 2, stpb.AUDIO_ENCODING_FLOAT32: 4}


def validate_config(
    config: stpb.StreamingRecognitionConfig, model: str
) -> stpb.StreamingRecognitionConfig:
    """The session's config checked, with its effective TranscriptionConfig; INVALID_ARGUMENT
    naming the first bad field."""
    if config.encoding not in BYTES_PER_SAMPLE:
        raise InvalidArgument(
            f"streaming_config.encoding {_enum_name(config.encoding)} is not one this service "
            "takes: use AUDIO_ENCODING_LINEAR16 (16-bit signed little-endian PCM) or "
            "AUDIO_ENCODING_FLOAT32",
            field="streaming_config.encoding",
        )
    rate = config.sample_rate_hertz
    if not MIN_SAMPLE_RATE <= rate <= MAX_SAMPLE_RATE:
        got = "it is missing" if rate == 0 else f"got {rate}"
        raise InvalidArgument(
            f"streaming_config.sample_rate_hertz must be the audio's sample rate, "
            f"{MIN_SAMPLE_RATE} to {MAX_SAMPLE_RATE}; {got}",
            field="streaming_config.sample_rate_hertz",
        )
    if not 0 <= config.audio_channel_count <= MAX_CHANNELS:
        raise InvalidArgument(
            f"streaming_config.audio_channel_count must be 1 or 2 (0 means 1); got "
            f"{config.audio_channel_count}",
            field="streaming_config.audio_channel_count",
        )
    endpointing = config.endpointing
    for name, value, (low, high) in (
        ("silence_seconds", endpointing.silence_seconds, SILENCE_SECONDS),
        ("max_utterance_seconds", endpointing.max_utterance_seconds, MAX_UTTERANCE_SECONDS),
    ):
        if value != 0 and not low <= value <= high:
            raise InvalidArgument(
                f"streaming_config.endpointing.{name} must be {low:g} to {high:g} s (0 = the "
                f"default); got {value:g}",
                field=f"streaming_config.endpointing.{name}",
            )
    if not 0.0 <= endpointing.speech_threshold <= 1.0:
        raise InvalidArgument(
            "streaming_config.endpointing.speech_threshold must be 0 to 1 (0 = the default); "
            f"got {endpointing.speech_threshold:g}",
            field="streaming_config.endpointing.speech_threshold",
        )
    try:
        effective = convert.validate_submission("", config.config, model)
    except InvalidArgument as error:
        # The same checks as for files, named where they sit in this message.
        raised = InvalidArgument(error.message)
        raised.violations = tuple(
            FieldViolation(f"streaming_config.{v.field}", v.description) for v in error.violations
        )
        raise raised from None
    checked = stpb.StreamingRecognitionConfig()
    checked.CopyFrom(config)
    checked.config.CopyFrom(effective)
    return checked


def _enum_name(value: int) -> str:
    try:
        return stpb.AudioEncoding.Name(value)
    except ValueError:
        return str(value)


@dataclass(eq=False)
class _Session:
    config: stpb.StreamingRecognitionConfig
    tenant: str
    received_bytes: int = 0
    charged_seconds: float = 0.0
    error: SayItError | None = None
    idle: bool = False
    # Set when the gateway shuts down: no more audio is taken, the session is flushed.
    stop: asyncio.Event = field(default_factory=asyncio.Event)
    expired: bool = False  # stopped for the call's deadline
    job_name: str = ""

    def expire(self) -> None:
        self.expired = True
        self.stop.set()

    @property
    def bytes_per_second(self) -> float:
        width = BYTES_PER_SAMPLE[self.config.encoding]
        return float(
            width * self.config.sample_rate_hertz * max(1, self.config.audio_channel_count)
        )

    @property
    def received_seconds(self) -> float:
        return self.received_bytes / self.bytes_per_second


class LiveStreams:
    def __init__(
        self, config: GatewayConfig, channel: grpc.aio.Channel, limiter: Limiter | None
    ) -> None:
        self._config = config
        self._scheduler = spb_grpc.SchedulerServiceStub(channel)
        self._limiter = limiter
        self._sessions: set[_Session] = set()

    async def recognize(
        self,
        requests: AsyncIterator[pb.StreamingRecognizeRequest],
        context: grpc.aio.ServicerContext,
    ) -> AsyncIterator[pb.StreamingRecognizeResponse]:
        iterator = aiter(requests)
        idle = self._config.stream_idle_seconds
        try:
            first = await asyncio.wait_for(anext(iterator, None), idle)
        except TimeoutError:
            raise InvalidArgument(
                f"{FIRST_MESSAGE}; nothing came within {idle:g} s", field="streaming_config"
            ) from None
        if first is None or not first.HasField("streaming_config"):
            raise InvalidArgument(FIRST_MESSAGE, field="streaming_config")
        session = _Session(
            validate_config(first.streaming_config, self._config.model), auth.current().tenant
        )
        await self._charge(session, QUOTA_STEP_SECONDS)  # nothing left: refused before it opens
        limit = call_timeout(context, self._config.stream_timeout_seconds)
        call = self._scheduler.StreamingRecognize(timeout=limit)
        forwarder: asyncio.Task[None] | None = None
        self._sessions.add(session)
        # Shortly before the deadline the session stops taking audio and is flushed, so what
        # was heard is in its job instead of cut off with the call.
        timer = asyncio.get_running_loop().call_later(
            max(0.0, limit - min(DEADLINE_FLUSH_SECONDS, limit / 10)), session.expire
        )
        try:
            header = spb.StreamingSessionHeader(
                tenant=session.tenant, streaming_config=session.config
            )
            await call.write(spb.StreamingRecognizeRequest(header=header))
            forwarder = asyncio.create_task(self._forward(session, iterator, call, context))
            named = False
            async for reply in call:
                if not named:
                    session.job_name = reply.job_name
                    logs.bind(job_id=reply.job_name.removeprefix("jobs/"))
                    log.info("session_opened", sample_rate_hertz=session.config.sample_rate_hertz)
                    named = True
                yield _public(reply)
            if session.error is not None:
                raise session.error
            if session.expired:
                raise DeadlineExceeded(
                    f"the session reached its deadline ({limit:.0f} s; "
                    "SAYIT_GATEWAY_STREAM_TIMEOUT_SECONDS when the call sets none) after "
                    f"{session.received_seconds:.1f} s of audio (its job {session.job_name} "
                    "holds the transcript up to there); open a new session to go on"
                )
            if session.stop.is_set():
                raise Unavailable(
                    "the service is shutting down: the session ended after "
                    f"{session.received_seconds:.1f} s of audio (its job {session.job_name} "
                    "holds the transcript up to there); open a new session to go on"
                )
            log.info(
                "session_ended",
                audio_seconds=round(session.received_seconds, 2),
                idle=session.idle,
            )
        finally:
            timer.cancel()
            self._sessions.discard(session)
            if forwarder is not None:
                forwarder.cancel()
            call.cancel()
            await self._refund(session)

    def drain(self) -> None:
        """SIGTERM: every session stops taking audio and is flushed (its callers get their
        last finals, then UNAVAILABLE), so the drain ends without cutting sessions off."""
        for session in self._sessions:
            session.stop.set()

    async def _forward(
        self,
        session: _Session,
        iterator: AsyncIterator[pb.StreamingRecognizeRequest],
        call: grpc.aio.StreamStreamCall,
        context: grpc.aio.ServicerContext,
    ) -> None:
        """The caller's audio, charged, to the scheduler, until the caller half-closes, falls
        idle, or breaks a rule (then the session is half-closed and ends with that error)."""
        idle = self._config.stream_idle_seconds
        last_audio = time.monotonic()
        stop = asyncio.ensure_future(session.stop.wait())
        try:
            while True:
                wait = max(0.0, last_audio + idle - time.monotonic())
                step = asyncio.ensure_future(anext(iterator, None))
                step.add_done_callback(_retrieve)
                done, _ = await asyncio.wait(
                    {step, stop}, timeout=wait, return_when=asyncio.FIRST_COMPLETED
                )
                if step not in done:
                    step.cancel()
                    if stop not in done:
                        session.idle = True
                        log.info("session_idle", idle_seconds=idle)
                    break
                request = step.result()
                if request is None:
                    # A caller that goes away ends its request stream too, and its call is
                    # cancelled a moment later: that is not a half-close (the session is
                    # cancelled, not flushed).
                    await asyncio.sleep(HALF_CLOSE_GRACE_SECONDS)
                    if context.cancelled() or context.done():
                        return
                    break
                if request.HasField("streaming_config"):
                    session.error = InvalidArgument(
                        "streaming_config may only be the first message; every later one is "
                        "audio_content",
                        field="streaming_config",
                    )
                    break
                audio = request.audio_content
                if not audio:
                    continue
                if len(audio) > MAX_AUDIO_MESSAGE_BYTES:
                    session.error = TooLarge(
                        f"audio_content is {len(audio)} bytes; send at most "
                        f"{MAX_AUDIO_MESSAGE_BYTES} bytes per message (100 ms of audio per "
                        "message is usual)",
                        violations=[
                            QuotaViolation(
                                "request", f"audio_content bytes: {MAX_AUDIO_MESSAGE_BYTES}"
                            )
                        ],
                    )
                    break
                last_audio = time.monotonic()
                heard = (session.received_bytes + len(audio)) / session.bytes_per_second
                try:
                    while heard > session.charged_seconds:
                        await self._charge(session, QUOTA_STEP_SECONDS)
                except SayItError as error:
                    log.info("session_quota_ran_out", audio_seconds=round(heard, 2))
                    session.error = error
                    break
                session.received_bytes += len(audio)
                await call.write(spb.StreamingRecognizeRequest(audio_content=audio))
            await call.done_writing()
        except (grpc.aio.AioRpcError, asyncio.InvalidStateError):
            pass  # the scheduler's call ended: the reader reports how
        finally:
            stop.cancel()

    async def _charge(self, session: _Session, seconds: float) -> None:
        if self._limiter is None:
            session.charged_seconds += seconds
            return
        await self._limiter.charge_audio(session.tenant, seconds)
        session.charged_seconds += seconds

    async def _refund(self, session: _Session) -> None:
        unused = session.charged_seconds - session.received_seconds
        if self._limiter is not None and unused > 0:
            with contextlib.suppress(Exception):
                await self._limiter.refund_audio(session.tenant, unused)


def _retrieve(future: asyncio.Future[Any]) -> None:
    """A read of the caller's stream left behind when the session ended: its outcome (the
    call's end) is nobody's."""
    if not future.cancelled():
        future.exception()


def _public(reply: spb.StreamingRecognizeResponse) -> pb.StreamingRecognizeResponse:
    response = pb.StreamingRecognizeResponse(job_name=reply.job_name)
    if reply.HasField("result"):
        response.result.CopyFrom(reply.result)
    elif reply.HasField("speech_event"):
        response.speech_event.CopyFrom(reply.speech_event)
    return response
