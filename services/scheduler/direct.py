"""Direct jobs: short audio transcribed at once, by this scheduler, on the direct transcribers.

A direct job runs as a task of this process, which streams the transcriber's work into the job's
record and events (so GetJob, WatchJob and other schedulers see it) and serves its caller
in-process: a caller waiting for the job's end awaits the task, not the job's event stream.
Redis only records the job, and carries it on if it overflows to the queue: when no direct
transcriber could take it after all, or when its wait for a slot ran out.

A call cut off (UNAVAILABLE) after the transcriber had accepted it means the transcriber's
process died on this audio: the job fails INTERNAL, is not retried or queued, and the crash is
counted against the audio's fingerprint (services.scheduler.poison).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from typing import Any

import grpc

from sayit.common.v1 import event_pb2, job_pb2
from sayit.scheduler.v1 import scheduler_service_pb2 as pb
from sayit.transcriber.v1 import transcriber_service_pb2 as tpb
from sayit.transcriber.v1 import transcriber_service_pb2_grpc as tpb_grpc
from services.common import logs
from services.common.errors import public_details, status_code_number
from services.common.interceptors import ACCEPTED_KEY
from services.jobs import changes, schema
from services.jobs.queue import HIGH
from services.jobs.store import JobStore
from services.scheduler.admission import DirectSlots
from services.scheduler.budget import BudgetPolicy
from services.scheduler.planner import Planner
from services.scheduler.poison import CRASHED_MESSAGE

log = logs.get_logger("sayit.scheduler")

COMPLETED, FAILED, ENDED, OVERFLOW = "completed", "failed", "ended", "overflow"
# The transcriber could not take the job before doing any work: queue it instead.
_OVERFLOW_CODES = (grpc.StatusCode.RESOURCE_EXHAUSTED, grpc.StatusCode.UNAVAILABLE)


class DirectJobs:
    def __init__(
        self,
        store: JobStore,
        channel: grpc.aio.Channel,
        slots: DirectSlots,
        planner: Planner,
        *,
        timeout_seconds: Any,
        audio_ttl_seconds: int,
        budget: BudgetPolicy,
    ) -> None:
        """`timeout_seconds(audio_seconds)` is the deadline of one transcription."""
        self._store = store
        self._stub = tpb_grpc.TranscriberServiceStub(channel)
        self.slots = slots
        self._planner = planner
        self._timeout = timeout_seconds
        self._audio_ttl = audio_ttl_seconds
        self._budget = budget
        self.tasks: dict[str, asyncio.Task[str]] = {}
        # Live sessions of this scheduler (services.scheduler.sessions), by job id: cancelled,
        # reconciled and drained as direct jobs are, but never waited for as one.
        self.sessions: dict[str, asyncio.Task[str]] = {}

    def task_of(self, job_id: str) -> asyncio.Task[str] | None:
        """The task running a direct job or a live session of this scheduler, if any."""
        return self.tasks.get(job_id) or self.sessions.get(job_id)

    async def start(
        self,
        job_id: str,
        record: Mapping[str, bytes | str | int | float],
        request: pb.SubmitJobRequest,
        duration: float,
        reserved: bool,
    ) -> None:
        """Record the job and run it on a direct slot: the one `reserved` for it, or the first
        one free (see DirectSlots)."""
        accepted = changes.event(
            job_id,
            accepted=event_pb2.JobAccepted(
                routing=job_pb2.ROUTING_DIRECT, audio_duration_seconds=duration
            ),
        )
        await self._store.create(job_id, record, accepted)
        holding = {"slot": reserved}
        fingerprint = str(record.get("fingerprint", ""))
        task = asyncio.create_task(self._run(job_id, request, duration, holding, fingerprint))
        self.tasks[job_id] = task

        def finished(_: asyncio.Task[str]) -> None:
            # Here, not in the task: a task cancelled before it starts runs none of its code.
            self.tasks.pop(job_id, None)
            if holding["slot"]:
                self.slots.release(duration)

        task.add_done_callback(finished)

    async def wait(self, job_id: str) -> bool:
        """Wait for a job run here to end; False if it does not run here or went to the queue
        (the caller then follows its events)."""
        task = self.tasks.get(job_id)
        if task is None:
            return False
        await asyncio.wait({task})  # the task's own cancellation is not the caller's
        return task.cancelled() or task.exception() is not None or task.result() != OVERFLOW

    async def _run(
        self,
        job_id: str,
        request: pb.SubmitJobRequest,
        duration: float,
        holding: dict[str, bool],
        fingerprint: str,
    ) -> str:
        try:
            if not holding["slot"]:
                holding["slot"] = await self.slots.acquire(duration)
                if not holding["slot"]:
                    log.info("direct_wait_ran_out", waited_seconds=self.slots.max_wait_seconds)
                    await self._overflow(job_id, request, duration)
                    return OVERFLOW
                state = (
                    await self._store.apply(job_id, changes.start_change(job_id, duration))
                ).state
                if state != schema.RUNNING:
                    return ENDED  # cancelled while it waited
            outcome = await self._transcribe(job_id, request, duration, fingerprint)
            if outcome == OVERFLOW:
                await self._overflow(job_id, request, duration)
            elif outcome == COMPLETED:
                await self._store.remember(job_id)
            return outcome
        except asyncio.CancelledError:
            change = changes.cancelled_change(job_id, "the direct transcription was stopped")
            await self._store.apply(job_id, change)
            raise
        except Exception as error:
            log.error("direct_job_crashed", exc_info=error)
            await self._store.fail(job_id, grpc.StatusCode.INTERNAL, "internal error")
            return FAILED

    async def _transcribe(
        self, job_id: str, request: pb.SubmitJobRequest, total: float, fingerprint: str
    ) -> str:
        """Stream the transcriber's work into the job. COMPLETED, FAILED, ENDED (the job ended
        elsewhere, e.g. cancelled) or OVERFLOW (no transcriber could start it)."""
        call = self._stub.TranscribeStream(
            tpb.TranscribeStreamRequest(
                audio=request.audio,
                config=request.config,
                job_id=job_id,
                audio_duration_seconds=request.audio_duration_seconds,
            ),
            timeout=float(self._timeout(total)),
        )
        received = False
        started = time.monotonic()
        try:
            async for response in call:
                received = True
                state = (
                    await self._store.apply(
                        job_id, changes.transcriber_change(job_id, response, total)
                    )
                ).state
                if response.HasField("transcript"):
                    if state != schema.SUCCEEDED:
                        return ENDED
                    # The transcriber's own time: not the wait for a slot after a job sent ahead.
                    self.slots.finished(total, response.transcript.processing_seconds)
                    return COMPLETED
                if state in schema.TERMINAL:
                    call.cancel()
                    return ENDED
            return ENDED
        except grpc.aio.AioRpcError as error:
            code = error.code()
            if code == grpc.StatusCode.UNAVAILABLE and (received or await _accepted(call)):
                await self._crashed(job_id, fingerprint, error)
                return FAILED
            if not received and code in _OVERFLOW_CODES:
                log.info(
                    "direct_overflow", code=code.name, after=round(time.monotonic() - started, 3)
                )
                return OVERFLOW
            if code not in (grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.DEADLINE_EXCEEDED):
                log.warning("direct_failed", code=code.name, details=error.details())
            # The job's error is public: gRPC's own text (addresses) is replaced.
            message = public_details(error, "the transcriber")
            change = changes.failed_change(job_id, status_code_number(code), message)
            await self._store.apply(job_id, change)
            return FAILED
        except asyncio.CancelledError:
            call.cancel()
            raise

    async def _crashed(self, job_id: str, fingerprint: str, error: grpc.aio.AioRpcError) -> None:
        """The transcriber died while working on this audio: fail the job without retrying it
        (another transcriber would die the same way) and count the crash against the audio."""
        crashes = await self._store.poison.record(fingerprint) if fingerprint else None
        log.error(
            "direct_transcriber_crashed",
            details=error.details(),
            crashes=crashes.count if crashes else None,
        )
        await self._store.fail(job_id, grpc.StatusCode.INTERNAL, CRASHED_MESSAGE)

    async def _overflow(self, job_id: str, request: pb.SubmitJobRequest, duration: float) -> None:
        """Queue the job on the high queue as one chunk: the caller's own audio."""
        budget = self._budget.seconds(duration, queued=True)
        applied = await self._store.apply(job_id, changes.overflowed_change(duration, HIGH, budget))
        if applied.state != schema.QUEUED:
            return
        await self._store.chunks.set_audio(job_id, 0, request.audio.content, self._audio_ttl)
        await self._planner.queue_chunks(job_id, HIGH, [duration])

    async def drain(self, grace_seconds: float) -> None:
        """Let direct jobs finish within the grace period; fail the rest truthfully."""
        tasks = list(self.tasks.items())
        if not tasks:
            return
        log.info("draining_direct_jobs", count=len(tasks))
        _, pending = await asyncio.wait([t for _, t in tasks], timeout=grace_seconds)
        for job_id, task in tasks:
            if task in pending:
                await self._store.fail(
                    job_id,
                    grpc.StatusCode.UNAVAILABLE,
                    "the scheduler shut down before the job finished; submit it again",
                )
                task.cancel()


async def _accepted(call: Any) -> bool:
    """Whether the transcriber had taken the call on (it sends ACCEPTED_KEY once it holds a slot
    for it) before the call ended."""
    try:
        metadata = await call.initial_metadata()
    except Exception:  # none came: not accepted
        return False
    return any(key == ACCEPTED_KEY for key, _ in (metadata or ()))
