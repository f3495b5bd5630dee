"""SchedulerService: create, route, watch and cancel jobs."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from concurrent.futures import Executor
from typing import Any, TypeVar

import grpc

from sayit.common.v1 import event_pb2, job_pb2
from sayit.scheduler.v1 import scheduler_service_pb2 as pb
from sayit.scheduler.v1 import scheduler_service_pb2_grpc as pb_grpc
from services.common import audio, logs, names
from services.common.errors import (
    FailedPrecondition,
    InvalidArgument,
    Unavailable,
    status_code_number,
)
from services.common.validation import validate_config
from services.scheduler import dedupe, direct, metrics, records, routing
from services.scheduler.config import SchedulerConfig
from services.scheduler.direct import DirectRunner
from services.scheduler.jobs import JobStore
from services.scheduler.planner import Planner
from services.scheduler.queue import HIGH, JobQueue
from services.scheduler.records import Change
from services.scheduler.repeats import Repeats

log = logs.get_logger("sayit.scheduler")
T = TypeVar("T")
DEFAULT_TENANT = "default"
# Admission of new queued work: (queue, audio seconds) -> None, or raises RESOURCE_EXHAUSTED
# (see services.scheduler.backpressure).
Admission = Callable[[str, float], Awaitable[None]]


class SchedulerServicer(pb_grpc.SchedulerServiceServicer):
    def __init__(
        self,
        config: SchedulerConfig,
        store: JobStore,
        job_queue: JobQueue,
        runner: DirectRunner,
        planner: Planner,
        repeats: Repeats,
        executor: Executor,
        instance: str,
        admit: Admission | None = None,
    ) -> None:
        self._config = config
        self._admit = admit
        self._store = store
        self._queue = job_queue
        self._direct = runner
        self._planner = planner
        self._repeats = repeats
        self._executor = executor
        self._instance = instance
        self._background: set[asyncio.Task[Any]] = set()

    async def _blocking(self, fn: Callable[..., T], *args: Any) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn, *args)

    def _spawn(self, coroutine: Any) -> asyncio.Task[Any]:
        task = asyncio.create_task(coroutine)
        self._background.add(task)
        task.add_done_callback(self._background.discard)
        return task

    # --- RPCs -----------------------------------------------------------------------------

    async def SubmitJob(
        self, request: pb.SubmitJobRequest, context: grpc.aio.ServicerContext
    ) -> pb.SubmitJobResponse:
        tenant = request.tenant or DEFAULT_TENANT
        validate_config(request.config, [self._config.model])
        info = await self._blocking(audio.probe, request.audio.content, request.audio.filename)
        duration = info.duration_seconds
        if duration > self._config.max_audio_seconds:
            raise InvalidArgument(
                f"audio is {duration:.0f} s long; the limit is "
                f"{self._config.max_audio_seconds:.0f} s",
                field="audio.content",
            )
        short = routing.is_short(duration, self._config.sync_max_seconds)
        fingerprint = await self._blocking(
            dedupe.fingerprint, request.audio.content, request.config, self._config.model
        )
        job_id = names.new_job_id()
        logs.bind(job_id=job_id)
        repeat = await self._repeats.find(job_id, tenant, request, fingerprint, duration)
        if repeat is not None:
            logs.bind(job_id=repeat.job_id)
            log.info("job_repeated", how=repeat.how, tenant=tenant)
            if request.wait_if_short and short:
                await self._wait_for_end(repeat.job_id, tenant, owner=False)
            return pb.SubmitJobResponse(job=await self._store.job(repeat.job_id, tenant))
        queue_only = request.routing_policy == pb.ROUTING_POLICY_QUEUE
        slots = self._direct.slots
        reserved = short and not queue_only and slots.try_acquire(duration)
        route = routing.choose(
            duration,
            queue_only=queue_only,
            sync_max_seconds=self._config.sync_max_seconds,
            direct_slot_free=reserved,
            direct_wait_short=not reserved and slots.worth_waiting(),
        )
        try:
            if not route.direct and self._admit is not None:
                await self._admit(route.queue, duration)
        except BaseException:
            with contextlib.suppress(Exception):
                await self._repeats.release(job_id, tenant, request, fingerprint)
            raise
        record = self._new_record(tenant, request, duration, route, fingerprint)
        try:
            if route.direct:
                try:
                    await self._start_direct(job_id, record, request, duration, reserved)
                except BaseException:
                    if reserved:
                        slots.release(duration)
                    raise
            else:
                await self._enqueue_new(job_id, record, request, duration, route.queue)
        except Exception:
            with contextlib.suppress(Exception):
                await self._repeats.release(job_id, tenant, request, fingerprint)
            raise
        metrics.job_submitted(route.routing, route.queue)
        log.info(
            "job_accepted",
            routing=route.routing,
            queue=route.queue,
            waits_for_slot=route.direct and not reserved,
            audio_seconds=round(duration, 2),
            tenant=tenant,
        )
        if request.wait_if_short and short:
            await self._wait_for_end(job_id, tenant, owner=True)
        return pb.SubmitJobResponse(job=await self._store.job(job_id, tenant))

    def _new_record(
        self,
        tenant: str,
        request: pb.SubmitJobRequest,
        duration: float,
        route: routing.Route,
        fingerprint: str,
    ) -> dict[str, bytes | str | int | float]:
        record = records.new_record(
            tenant=tenant,
            # A direct job waiting for a slot is queued (in this scheduler) until it has one.
            state=records.RUNNING if route.direct and not route.waits else records.QUEUED,
            routing=route.routing,
            queue="",
            duration=duration,
            config=request.config,
            filename=request.audio.filename,
            # Direct jobs die with this scheduler; queued jobs are planned by it.
            owner=self._instance,
            chunks_total=1 if route.direct or not self._planner.is_long(duration) else 0,
            fingerprint=fingerprint,
        )
        record["cache_ttl"] = self._config.result_cache_ttl_seconds
        record["request_id"] = str(logs.current().get("request_id", ""))
        return record

    async def GetJob(
        self, request: pb.GetJobRequest, context: grpc.aio.ServicerContext
    ) -> pb.GetJobResponse:
        job_id = _job_id(request.job_id)
        return pb.GetJobResponse(
            job=await self._store.job(job_id, request.tenant or DEFAULT_TENANT)
        )

    async def WatchJob(
        self, request: pb.WatchJobRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[pb.WatchJobResponse]:
        job_id = _job_id(request.job_id)
        if request.after_sequence < 0:
            raise InvalidArgument("after_sequence must be 0 or more", field="after_sequence")
        logs.bind(job_id=job_id)
        tenant = request.tenant or DEFAULT_TENANT
        async for message in self._store.watch(job_id, tenant, request.after_sequence):
            yield pb.WatchJobResponse(event=message)

    async def CancelJob(
        self, request: pb.CancelJobRequest, context: grpc.aio.ServicerContext
    ) -> pb.CancelJobResponse:
        job_id = _job_id(request.job_id)
        logs.bind(job_id=job_id)
        job = await self._cancel(
            job_id, request.tenant or DEFAULT_TENANT, "cancelled by the caller"
        )
        return pb.CancelJobResponse(job=job)

    async def ListJobs(
        self, request: pb.ListJobsRequest, context: grpc.aio.ServicerContext
    ) -> pb.ListJobsResponse:
        jobs, token = await self._store.list(
            request.tenant or DEFAULT_TENANT, request.page_size, request.page_token
        )
        return pb.ListJobsResponse(jobs=jobs, next_page_token=token)

    # --- direct jobs ----------------------------------------------------------------------

    async def _start_direct(
        self,
        job_id: str,
        record: dict[str, bytes | str | int | float],
        request: pb.SubmitJobRequest,
        duration: float,
        reserved: bool,
    ) -> None:
        """Run a short job on a direct slot: the one `reserved` for it, or the first one free
        (see DirectSlots)."""
        accepted = records.event(
            job_id,
            accepted=event_pb2.JobAccepted(
                routing=job_pb2.ROUTING_DIRECT, audio_duration_seconds=duration
            ),
        )
        await self._store.create(job_id, record, accepted)
        holding = {"slot": reserved}
        task = self._spawn(self._run_direct(job_id, request, duration, holding))
        self._direct.tasks[job_id] = task

        def finished(_: asyncio.Task[Any]) -> None:
            # Here, not in the task: a task cancelled before it starts runs none of its code.
            self._direct.tasks.pop(job_id, None)
            if holding["slot"]:
                self._direct.slots.release(duration)

        task.add_done_callback(finished)

    async def _run_direct(
        self,
        job_id: str,
        request: pb.SubmitJobRequest,
        duration: float,
        holding: dict[str, bool],
    ) -> None:
        timeout = float(self._config.queue.job_timeout(duration))
        slots = self._direct.slots
        try:
            if not holding["slot"]:
                holding["slot"] = await slots.acquire(duration)
                if not holding["slot"]:
                    log.info("direct_wait_ran_out", waited_seconds=slots.max_wait_seconds)
                    await self._overflow(job_id, request, duration)
                    return
                _, state = await self._store.apply(job_id, records.start_change(job_id, duration))
                if state != records.RUNNING:
                    return  # cancelled while it waited
            outcome = await self._direct.run(
                job_id, request.audio, request.config, duration, timeout
            )
            if outcome == direct.OVERFLOW:
                await self._overflow(job_id, request, duration)
            elif outcome == direct.COMPLETED:
                await self._store.remember(job_id)
        except asyncio.CancelledError:
            await self._store.apply(
                job_id, records.cancelled_change(job_id, "the direct transcription was stopped")
            )
            raise
        except Exception as error:
            log.error("direct_job_crashed", exc_info=error)
            await self._store.apply(
                job_id,
                records.failed_change(
                    job_id, status_code_number(grpc.StatusCode.INTERNAL), "internal error"
                ),
            )

    async def _overflow(self, job_id: str, request: pb.SubmitJobRequest, duration: float) -> None:
        """No direct transcriber could take the job after all (or its wait for a slot ran out):
        queue it on the high queue."""
        change = Change(
            allow=(records.RUNNING, records.QUEUED),
            set={
                "state": records.QUEUED,
                "routing": records.QUEUED_ROUTE,
                "queue": HIGH,
                "planned": 1,
                "planned_ms": records.now_ms(),
                "chunks_total": 1,
            },
            plan=[(0.0, duration)],
        )
        _, state = await self._store.apply(job_id, change)
        if state != records.QUEUED:
            return
        await self._store.set_chunk_audio(
            job_id, 0, request.audio.content, self._config.audio_ttl_seconds
        )
        await self._enqueue(job_id, HIGH, [duration])

    # --- queued jobs ----------------------------------------------------------------------

    async def _enqueue_new(
        self,
        job_id: str,
        record: dict[str, bytes | str | int | float],
        request: pb.SubmitJobRequest,
        duration: float,
        queue: str,
    ) -> None:
        """Queue a job: audio too short to cut is its one chunk at once; longer audio is cut
        into chunks in the background (see Planner)."""
        single = record["chunks_total"] == 1
        record["queue"] = queue
        if single:
            record["planned"], record["planned_ms"] = 1, records.now_ms()
        accepted = records.event(
            job_id,
            accepted=event_pb2.JobAccepted(
                routing=job_pb2.ROUTING_QUEUED, audio_duration_seconds=duration
            ),
        )
        await self._store.create(
            job_id,
            record,
            accepted,
            audio=request.audio.content,
            audio_ttl_seconds=self._config.audio_ttl_seconds,
            single_chunk=single,
        )
        if single:
            await self._enqueue(job_id, queue, [duration])
        else:
            self._planner.start(job_id, self._planner.meta(str(record["request_id"])))

    async def _enqueue(self, job_id: str, queue: str, durations: list[float]) -> None:
        meta = self._planner.meta(str(logs.current().get("request_id", "")))
        try:
            await self._planner.enqueue(job_id, queue, durations, meta)
        except Exception as error:
            log.error("enqueue_failed", error=str(error))
            change = records.failed_change(
                job_id, status_code_number(grpc.StatusCode.UNAVAILABLE), "could not queue the job"
            )
            await self._store.apply(job_id, change)
            raise Unavailable("the queue is unavailable; retry shortly") from error

    # --- waiting and cancelling -----------------------------------------------------------

    async def _wait_for_end(self, job_id: str, tenant: str, *, owner: bool) -> None:
        """Follow the job to its end; if the caller that created it goes away first, cancel the
        job (unless other submissions share it)."""
        try:
            async for message in self._store.watch(job_id, tenant, 0):
                if records.is_terminal(message):
                    return
        except asyncio.CancelledError:
            if owner:
                self._spawn(self._cancel_quietly(job_id, tenant))
            raise

    async def _cancel_quietly(self, job_id: str, tenant: str) -> None:
        try:
            record = await self._store.record(job_id, tenant)
            if records.number(record, "attached") > 0:
                return  # another caller waits for it too
            await self._cancel(job_id, tenant, "the caller cancelled or its deadline passed")
        except FailedPrecondition:
            pass
        except Exception as error:
            log.warning("cancel_failed", job_id=job_id, error=str(error))

    async def _cancel(self, job_id: str, tenant: str, reason: str) -> job_pb2.TranscriptionJob:
        record = await self._store.record(job_id, tenant)
        state = records.state_of(record)
        if state not in records.ACTIVE:
            raise FailedPrecondition(
                f"job jobs/{job_id} has already ended ({state.lower()}); only queued or running "
                "jobs can be cancelled"
            )
        _, state = await self._store.apply(job_id, records.cancelled_change(job_id, reason))
        if state != records.CANCELLED:
            raise FailedPrecondition(f"job jobs/{job_id} ended ({state.lower()}) before the cancel")
        task = self._direct.tasks.get(job_id) or self._planner.tasks.get(job_id)
        if task is not None:
            task.cancel()
        # Re-read: the plan may have been recorded meanwhile.
        count = int(records.number(await self._store.record(job_id, tenant), "chunks_total"))
        if records.text(record, "routing") == records.QUEUED_ROUTE and count:
            outcome = await self._blocking(self._queue.stop_chunks, job_id, count)
            log.info("job_cancelled", reason=reason, chunks=count, queue_actions=outcome)
        else:
            log.info("job_cancelled", reason=reason)
        await self._store.delete_all_audio(job_id, count)
        return await self._store.job(job_id, tenant)

    # --- shutdown -------------------------------------------------------------------------

    async def drain(self, grace_seconds: float) -> None:
        """Let direct jobs finish within the grace period; fail the rest truthfully."""
        tasks = list(self._direct.tasks.items())
        if not tasks:
            return
        log.info("draining_direct_jobs", count=len(tasks))
        _, pending = await asyncio.wait([t for _, t in tasks], timeout=grace_seconds)
        for job_id, task in tasks:
            if task in pending:
                change = records.failed_change(
                    job_id,
                    status_code_number(grpc.StatusCode.UNAVAILABLE),
                    "the scheduler shut down before the job finished; submit it again",
                )
                await self._store.apply(job_id, change)
                task.cancel()


def _job_id(value: str) -> str:
    if not names.is_job_id(value):
        raise InvalidArgument(
            f"job_id must be 32 hex characters; got {value[:80]!r}", field="job_id"
        )
    return value
