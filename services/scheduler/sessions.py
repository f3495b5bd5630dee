"""Live sessions (StreamingRecognize): a caller's audio stream relayed to a session place on a
direct transcriber (its StreamTranscribe), and the transcriber's results relayed back.

A session is a job, recorded like a direct job (routing DIRECT, state RUNNING, owner this
scheduler), so GetJob, ListJobs and WatchJob work on it as on any job: each final result the
transcriber sends as a `segment` is appended as a segment event while the session runs (a second
caller watching the job sees it live), and the transcriber's `summary` completes the job with the
whole transcript.

- Places: this scheduler grants at most SAYIT_STREAM_SESSIONS sessions at once (the direct
  transcribers' session places); beyond, RESOURCE_EXHAUSTED with RetryInfo, and no job is
  recorded. A transcriber that refuses the session itself (its places taken by another
  scheduler) is answered the same way. The job is recorded only once a transcriber has taken the
  session (it sends ACCEPTED_KEY), so a refused session leaves no job behind.
- Progress: a live session's length is not known until it ends, so its `fraction` stays 0 while
  it runs and `audio_seconds_done` counts the audio heard so far (`audio_seconds_total` 0 =
  unknown), written every PROGRESS_EVERY_SECONDS of audio; the completed job has fraction 1 and
  its duration. Progress never goes backwards.
- Budget: a session has no processing budget (its record's budget is 0): its length is the
  caller's. It cannot outlive its scheduler unnoticed: a session's task is registered with the
  direct jobs (DirectJobs.sessions), so the reconciler fails it if the task is gone, and another
  scheduler fails it if this one stops heartbeating.
- Ending: the caller half-closes → the transcriber flushes the last utterance and sends its
  summary → the job SUCCEEDS and the call ends OK. CancelJob (or the reconciler failing the job)
  cancels the session's task → the call ends CANCELLED "job jobs/{id} was cancelled" (or with the
  job's error). The caller going away cancels the job, unless it had half-closed (then the
  session finishes by itself and completes the job). SIGTERM: sessions stop taking audio, the
  transcriber flushes, the job completes with what was heard, and the caller is told
  UNAVAILABLE (retry: open a new session).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import grpc

from sayit.common.v1 import event_pb2, job_pb2, streaming_pb2
from sayit.common.v1 import transcription_pb2 as tpb
from sayit.scheduler.v1 import scheduler_service_pb2 as pb
from sayit.transcriber.v1 import transcriber_service_pb2 as trpb
from sayit.transcriber.v1 import transcriber_service_pb2_grpc as trpb_grpc
from services.common import logs, names
from services.common.errors import (
    Cancelled,
    InvalidArgument,
    QuotaViolation,
    ResourceExhausted,
    SayItError,
    Unavailable,
    from_rpc_error,
    status_code_from_number,
    status_code_number,
)
from services.common.interceptors import ACCEPTED_KEY
from services.common.slots import Slots
from services.jobs import changes, records, schema
from services.jobs.store import JobStore
from services.scheduler import metrics
from services.scheduler.direct import DirectJobs

log = logs.get_logger("sayit.scheduler")

TRANSCRIBER = "the transcriber"
# A caller refused for want of a place is told to come back after this long.
RETRY_SECONDS = 5.0
# A transcriber takes a session or refuses it at once: longer than this is a transcriber in
# trouble.
ACCEPT_WAIT_SECONDS = 10.0
# A live session without a deadline from its caller (the gateway always sets one).
DEFAULT_SESSION_SECONDS = 6 * 3600.0
PROGRESS_EVERY_SECONDS = 5.0
HALF_CLOSE_GRACE_SECONDS = 0.1
# Transcriber responses held for a caller that reads slowly; beyond, the transcriber's stream
# waits (gRPC flow control carries the backpressure on to it).
OUT_QUEUE = 64
_BYTES_PER_SAMPLE = {
    streaming_pb2.AUDIO_ENCODING_LINEAR16: 2,
    streaming_pb2.AUDIO_ENCODING_FLOAT32: 4,
}
SHUTDOWN_MESSAGE = (
    "the service is shutting down: the session ended after {seconds:.1f} s of audio (its job "
    "{name} holds the transcript up to there); open a new session to go on"
)

COMPLETED, FAILED = "completed", "failed"


@dataclass
class _Session:
    job_id: str
    tenant: str
    config: streaming_pb2.StreamingRecognitionConfig
    call: Any  # the transcriber's StreamTranscribe call
    context: Any  # the caller's call (grpc.aio.ServicerContext)
    bytes_per_second: float
    out: asyncio.Queue[pb.StreamingRecognizeResponse] = field(
        default_factory=lambda: asyncio.Queue(OUT_QUEUE)
    )
    received_bytes: int = 0
    half_closed: bool = False  # the caller sent all its audio
    caller_gone: bool = False  # nobody reads the responses any more
    caller_left: bool = False  # the caller's call ended before the session did
    draining: bool = False  # the scheduler is shutting down: no more audio is taken
    error: SayItError | None = None  # how the caller's call ends, when not OK
    segments: list[tpb.Segment] = field(default_factory=list)
    started: float = field(default_factory=time.monotonic)
    stop_sending: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def name(self) -> str:
        return names.job_name(self.job_id)

    async def deliver(self, response: pb.StreamingRecognizeResponse) -> None:
        if not self.caller_gone:
            await self.out.put(response)

    def forget_caller(self) -> None:
        """The caller went away after its last audio: the session finishes without it."""
        self.caller_gone = True
        while not self.out.empty():
            self.out.get_nowait()  # unblocks a pump waiting to queue

    @property
    def heard_seconds(self) -> float:
        return self.received_bytes / self.bytes_per_second if self.bytes_per_second else 0.0


class LiveSessions:
    def __init__(
        self,
        store: JobStore,
        channel: grpc.aio.Channel,
        direct: DirectJobs,
        *,
        places: int,
        instance: str,
    ) -> None:
        self._store = store
        self._stub = trpb_grpc.TranscriberServiceStub(channel)
        self._direct = direct
        self.places = Slots(places, line=0)
        self._instance = instance
        self._sessions: dict[str, _Session] = {}
        self._background: set[asyncio.Task[None]] = set()

    async def run(
        self,
        requests: AsyncIterator[pb.StreamingRecognizeRequest],
        context: grpc.aio.ServicerContext,
    ) -> AsyncIterator[pb.StreamingRecognizeResponse]:
        """The scheduler's StreamingRecognize: a header first, then audio."""
        first = await anext(aiter(requests), None)
        if first is None or not first.HasField("header"):
            raise InvalidArgument(
                "the first message must be the session header; audio_content comes after it",
                field="header",
            )
        header = first.header
        tenant = header.tenant or "default"
        config = header.streaming_config
        width = _BYTES_PER_SAMPLE.get(config.encoding)
        if width is None or config.sample_rate_hertz <= 0:
            raise InvalidArgument(
                "the session header's streaming_config has no known encoding or sample rate",
                field="header.streaming_config",
            )
        if not self.places.try_acquire():
            log.info("session_refused", places=self.places.total)
            metrics.session_refused("scheduler")
            raise ResourceExhausted(
                f"every live session place is taken ({self.places.total}); retry in "
                f"{RETRY_SECONDS:g} s",
                retry_after_seconds=RETRY_SECONDS,
                violations=[QuotaViolation("server:live-sessions", "concurrent live sessions")],
            )
        held = True
        job_id = names.new_job_id()
        logs.bind(job_id=job_id)
        try:
            remaining = context.time_remaining()
            call = self._stub.StreamTranscribe(
                timeout=DEFAULT_SESSION_SECONDS if remaining is None else max(0.001, remaining)
            )
            session = _Session(
                job_id,
                tenant,
                config,
                call,
                context,
                bytes_per_second=float(width * config.sample_rate_hertz)
                * max(1, config.audio_channel_count),
            )
            await self._open(session)
            await self._record(session)
            task = asyncio.create_task(self._pump(session, requests))
            self._direct.sessions[job_id] = task
            self._sessions[job_id] = session
            held = False  # the task's end gives the place back

            def finished(_: asyncio.Task[str]) -> None:
                self._direct.sessions.pop(job_id, None)
                self._sessions.pop(job_id, None)
                self.places.release()

            task.add_done_callback(finished)
        finally:
            if held:
                self.places.release()
        log.info("session_started", tenant=tenant, sample_rate_hertz=config.sample_rate_hertz)
        try:
            # At once: the caller learns its job before any audio is heard.
            yield pb.StreamingRecognizeResponse(job_name=session.name)
            async for response in _relay(session, task):
                yield response
        except (asyncio.CancelledError, GeneratorExit):
            # The caller went away (grpc cancels the handler, or closes it at a yield). A
            # session whose audio all came finishes by itself.
            session.caller_left = True
            if not task.done() and not session.half_closed:
                ending = asyncio.create_task(
                    self._cancel(session, task, "the caller cancelled or its deadline passed")
                )
                self._background.add(ending)
                ending.add_done_callback(self._background.discard)
            else:
                session.forget_caller()
            raise
        await self._outcome(session, task)

    async def _open(self, session: _Session) -> None:
        """Send the setup and wait until the transcriber takes the session; its refusal (no
        place, bad config) is the caller's error."""
        call = session.call
        setup = trpb.StreamTranscribeSetup(streaming_config=session.config, job_id=session.job_id)
        try:
            await call.write(trpb.StreamTranscribeRequest(setup=setup))
            accepted = await asyncio.wait_for(_accepted(call), ACCEPT_WAIT_SECONDS)
        except grpc.aio.AioRpcError as error:
            raise _refused(error) from None
        except TimeoutError:
            call.cancel()
            log.warning("session_not_taken", waited_seconds=ACCEPT_WAIT_SECONDS)
            raise Unavailable(f"{TRANSCRIBER} did not take the session; retry") from None
        except BaseException:
            call.cancel()
            raise
        if not accepted:
            try:
                await call.read()  # the call ended: raises its status
            except grpc.aio.AioRpcError as error:
                raise _refused(error) from None
            call.cancel()
            raise Unavailable(f"{TRANSCRIBER} did not take the session; retry")

    async def _record(self, session: _Session) -> None:
        record = records.new_record(
            tenant=session.tenant,
            state=schema.RUNNING,
            routing=schema.DIRECT,
            queue="",
            duration=0.0,  # not known until the session ends
            config=session.config.config,
            filename="",
            # Live sessions die with this scheduler.
            owner=self._instance,
            chunks_total=1,
            # No budget: a session lasts as long as its caller sends audio.
            budget_seconds=0.0,
        )
        record["live"] = 1  # a live session's record, for whoever reads records raw
        record["request_id"] = str(logs.current().get("request_id", ""))
        accepted = changes.event(
            session.job_id,
            accepted=event_pb2.JobAccepted(routing=job_pb2.ROUTING_DIRECT),
        )
        try:
            await self._store.create(session.job_id, record, accepted)
        except BaseException:
            session.call.cancel()
            raise

    async def _pump(
        self, session: _Session, requests: AsyncIterator[pb.StreamingRecognizeRequest]
    ) -> str:
        """Run the session to its end: the caller's audio to the transcriber, the
        transcriber's answers into the job and to the caller. COMPLETED or FAILED (the
        caller's call then ends with `session.error`)."""
        call = session.call
        sender = asyncio.create_task(self._send(session, requests))
        try:
            async for response in call:
                kind = response.WhichOneof("event")
                if kind == "result":
                    await session.deliver(
                        pb.StreamingRecognizeResponse(job_name=session.name, result=response.result)
                    )
                elif kind == "speech_event":
                    await session.deliver(
                        pb.StreamingRecognizeResponse(
                            job_name=session.name, speech_event=response.speech_event
                        )
                    )
                elif kind == "segment":
                    session.segments.append(response.segment)
                    change = changes.segment_change(session.job_id, response.segment)
                    if (await self._store.apply(session.job_id, change)).state != schema.RUNNING:
                        return await self._ended_elsewhere(session)
                elif kind == "summary":
                    return await self._complete(session, response.summary)
            session.error = Unavailable(
                f"{TRANSCRIBER} ended the session without its summary; open a new session"
            )
            await self._fail(session)
            return FAILED
        except grpc.aio.AioRpcError as error:
            session.error = from_rpc_error(error, TRANSCRIBER)
            if error.code() not in (
                grpc.StatusCode.CANCELLED,
                grpc.StatusCode.INVALID_ARGUMENT,
                grpc.StatusCode.DEADLINE_EXCEEDED,
                grpc.StatusCode.RESOURCE_EXHAUSTED,
            ):
                log.warning("session_failed", code=error.code().name, details=error.details())
            await self._fail(session)
            return FAILED
        except asyncio.CancelledError:
            call.cancel()
            with contextlib.suppress(Exception):
                change = changes.cancelled_change(session.job_id, "the live session was stopped")
                await self._store.apply(session.job_id, change)
            raise
        except Exception as error:
            log.error("session_crashed", exc_info=error)
            call.cancel()
            session.error = SayItError("internal error")
            with contextlib.suppress(Exception):
                await self._store.fail(session.job_id, grpc.StatusCode.INTERNAL, "internal error")
            return FAILED
        finally:
            sender.cancel()

    async def _send(
        self, session: _Session, requests: AsyncIterator[pb.StreamingRecognizeRequest]
    ) -> None:
        """The caller's audio, as it comes, to the transcriber (its writes wait on gRPC flow
        control: audio faster than the transcriber takes it waits in the caller's stream). The
        caller's half-close (or a drain) half-closes the transcriber's side."""
        call = session.call
        last_progress = 0.0
        stop = asyncio.ensure_future(session.stop_sending.wait())
        step: asyncio.Future[Any] | None = None
        try:
            iterator = aiter(requests)
            while True:
                step = asyncio.ensure_future(anext(iterator, None))
                step.add_done_callback(_retrieve)
                done, _ = await asyncio.wait({step, stop}, return_when=asyncio.FIRST_COMPLETED)
                if step not in done:
                    step.cancel()
                    break
                request = step.result()
                if request is None:
                    # A caller that goes away ends its request stream too: a moment later
                    # its call is cancelled (and so is the job). Only a stream that ended
                    # without that is the caller's half-close.
                    await asyncio.sleep(HALF_CLOSE_GRACE_SECONDS)
                    if session.caller_left or session.context.cancelled():
                        # The job is cancelled (by the handler too, whichever comes first).
                        change = changes.cancelled_change(
                            session.job_id, "the caller cancelled or its deadline passed"
                        )
                        await self._store.apply(session.job_id, change)
                        call.cancel()
                        return
                    session.half_closed = True
                    break
                if request.HasField("header"):
                    session.error = InvalidArgument(
                        "the session header may only be the first message", field="header"
                    )
                    break
                audio = request.audio_content
                if not audio:
                    continue
                await call.write(trpb.StreamTranscribeRequest(audio_content=audio))
                session.received_bytes += len(audio)
                heard = session.heard_seconds
                if heard - last_progress >= PROGRESS_EVERY_SECONDS:
                    last_progress = heard
                    await self._progress(session, heard)
            await call.done_writing()
        except (grpc.aio.AioRpcError, asyncio.InvalidStateError):
            pass  # the transcriber's call ended: the pump reports how
        finally:
            stop.cancel()
            if step is not None:
                step.cancel()

    async def _progress(self, session: _Session, heard: float) -> None:
        progress = job_pb2.JobProgress(
            fraction=0.0, audio_seconds_done=heard, audio_seconds_total=0.0, chunks_total=1
        )
        change = changes.progress_change(session.job_id, progress)
        with contextlib.suppress(Exception):  # progress is a hint; the job goes on without it
            await self._store.apply(session.job_id, change)

    async def _complete(self, session: _Session, summary: trpb.StreamTranscribeSummary) -> str:
        transcript = tpb.Transcript(
            text=" ".join(s.text.strip() for s in session.segments if s.text.strip()),
            language_code=summary.language_code,
            language_probability=summary.language_probability,
            audio_duration_seconds=summary.audio_seconds or session.heard_seconds,
            segments=session.segments,
            model=summary.model,
            processing_seconds=summary.processing_seconds,
            preset=summary.preset,
        )
        change = changes.completed_change(session.job_id, transcript, allow=(schema.RUNNING,))
        change.set["duration"] = transcript.audio_duration_seconds
        applied = await self._store.apply(session.job_id, change)
        if applied.state != schema.SUCCEEDED:
            return await self._ended_elsewhere(session)
        log.info(
            "session_completed",
            audio_seconds=round(transcript.audio_duration_seconds, 2),
            segments=len(session.segments),
            wall_seconds=round(time.monotonic() - session.started, 2),
        )
        if session.draining:
            session.error = Unavailable(
                SHUTDOWN_MESSAGE.format(
                    seconds=transcript.audio_duration_seconds, name=session.name
                )
            )
        return COMPLETED

    async def _ended_elsewhere(self, session: _Session) -> str:
        """The job ended while the session ran (cancelled, or failed by the reconciler)."""
        session.call.cancel()
        session.error = await self._job_error(session)
        return FAILED

    async def _job_error(self, session: _Session) -> SayItError:
        record = await self._store.raw_record(session.job_id)
        state = records.state_of(record)
        if state == schema.CANCELLED:
            return Cancelled(f"job {session.name} was cancelled")
        job = records.job_message(session.job_id, record)
        error = SayItError(job.error.message or f"job {session.name} failed")
        error.code = status_code_from_number(job.error.code)
        if error.code.name in ("OK", "UNKNOWN"):
            error.code = SayItError.code
        return error

    async def _fail(self, session: _Session) -> None:
        error = session.error
        assert error is not None
        change = changes.failed_change(
            session.job_id, status_code_number(error.code), error.message
        )
        change.set["duration"] = session.heard_seconds
        with contextlib.suppress(Exception):
            await self._store.apply(session.job_id, change)

    async def _cancel(self, session: _Session, task: asyncio.Task[str], reason: str) -> None:
        try:
            change = changes.cancelled_change(session.job_id, reason)
            await self._store.apply(session.job_id, change)
        except Exception as error:
            log.warning("cancel_failed", error=repr(error))
        log.info("job_cancelled", reason=reason)
        task.cancel()

    async def _outcome(self, session: _Session, task: asyncio.Task[str]) -> None:
        """End the caller's call as the session ended."""
        if task.cancelled():
            raise await self._job_error(session)
        outcome = task.result()
        if session.error is not None:
            raise session.error
        if outcome != COMPLETED:
            raise SayItError("internal error")

    async def drain(self, grace_seconds: float) -> None:
        """SIGTERM: every session stops taking audio; the transcribers flush what they heard
        and the jobs complete with it (their callers are told UNAVAILABLE). Sessions that do
        not finish within the grace period fail."""
        sessions = list(self._sessions.values())
        running = self._direct.sessions
        tasks = [running[s.job_id] for s in sessions if s.job_id in running]
        if not tasks:
            return
        log.info("draining_live_sessions", count=len(tasks))
        for session in sessions:
            session.draining = True
            session.stop_sending.set()
        _, pending = await asyncio.wait(tasks, timeout=grace_seconds)
        for session in sessions:
            task = self._direct.sessions.get(session.job_id)
            if task is not None and task in pending:
                await self._store.fail(
                    session.job_id,
                    grpc.StatusCode.UNAVAILABLE,
                    "the scheduler shut down before the session finished",
                )
                task.cancel()


async def _relay(
    session: _Session, task: asyncio.Task[str]
) -> AsyncIterator[pb.StreamingRecognizeResponse]:
    """The responses the pump queues for the caller, until the pump has ended and they are all
    sent."""
    getter: asyncio.Future[pb.StreamingRecognizeResponse] | None = None
    try:
        while True:
            if getter is None:
                getter = asyncio.ensure_future(session.out.get())
            waiting: set[asyncio.Future[Any]] = {getter, task}
            done, _ = await asyncio.wait(waiting, return_when=asyncio.FIRST_COMPLETED)
            if getter in done:
                response = getter.result()
                getter = None
                yield response
                continue
            break
    finally:
        if getter is not None:
            getter.cancel()
    while not session.out.empty():
        yield session.out.get_nowait()


def _retrieve(future: asyncio.Future[Any]) -> None:
    """A read of the caller's stream left behind when the session ended (the call ending
    fails it): its outcome is nobody's."""
    if not future.cancelled():
        future.exception()


def _refused(error: grpc.aio.AioRpcError) -> SayItError:
    """The caller's error for a transcriber that did not take the session: no place is
    RESOURCE_EXHAUSTED with a retry hint, whatever the transcriber said."""
    mapped = from_rpc_error(error, TRANSCRIBER)
    if error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED:
        metrics.session_refused("transcriber")
    if error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED and not mapped.details:
        return ResourceExhausted(
            f"no live session place is free on {TRANSCRIBER}s; retry in {RETRY_SECONDS:g} s",
            retry_after_seconds=RETRY_SECONDS,
        )
    log.info("session_refused_by_transcriber", code=error.code().name)
    return mapped


async def _accepted(call: Any) -> bool:
    metadata = await call.initial_metadata()
    return any(key == ACCEPTED_KEY for key, _ in (metadata or ()))
