"""A submission, from request to job: refuse audio that crashed the engine, answer repeats
without transcribing again, admit the job
(direct slot, wait, or queue), record it and start it, and, for a caller that waits for short
audio, follow it to its end.

The gateway has validated the config (it sends the effective one) and probed the audio's
duration; neither is done again here.
"""

from __future__ import annotations

import asyncio
import contextlib
from concurrent.futures import Executor
from dataclasses import dataclass
from typing import Any

from sayit.common.v1 import job_pb2
from sayit.scheduler.v1 import scheduler_service_pb2 as pb
from services.common import logs, names
from services.common.errors import InvalidArgument
from services.jobs import records, schema
from services.jobs.store import JobStore
from services.scheduler import fingerprints, metrics
from services.scheduler.admission import Admission, Route
from services.scheduler.budget import BudgetPolicy
from services.scheduler.cancellation import Cancellation
from services.scheduler.direct import DirectJobs
from services.scheduler.planner import Planner
from services.scheduler.poison import PoisonGuard
from services.scheduler.repeats import Repeats

log = logs.get_logger("sayit.scheduler")


@dataclass(frozen=True)
class Staged:
    """Audio stored already (by an upload, under `job_id`'s audio key) rather than in the
    request: the job takes that id, and the audio is always planned (queued)."""

    job_id: str
    fingerprint: str


class Submissions:
    def __init__(
        self,
        store: JobStore,
        admission: Admission,
        direct: DirectJobs,
        planner: Planner,
        repeats: Repeats,
        cancellation: Cancellation,
        executor: Executor,
        instance: str,
        *,
        result_cache_ttl_seconds: int,
        poison: PoisonGuard,
        budget: BudgetPolicy,
    ) -> None:
        self._poison = poison
        self._budget = budget
        self._cache_ttl = result_cache_ttl_seconds
        self._store = store
        self._admission = admission
        self._direct = direct
        self._planner = planner
        self._repeats = repeats
        self._cancellation = cancellation
        self._executor = executor
        self._instance = instance
        self._background: set[asyncio.Task[Any]] = set()

    async def submit(
        self, request: pb.SubmitJobRequest, tenant: str, *, staged: Staged | None = None
    ) -> job_pb2.TranscriptionJob:
        duration = request.audio_duration_seconds
        if not duration > 0:
            raise InvalidArgument(
                f"audio_duration_seconds must be the audio's probed duration; got {duration:g}",
                field="audio_duration_seconds",
            )
        content: bytes | None = None
        if staged is None:
            # Read once: each read of a bytes field copies it.
            content = request.audio.content
            fingerprint = await asyncio.get_running_loop().run_in_executor(
                self._executor, fingerprints.fingerprint, content, request.config
            )
            job_id = names.new_job_id()
        else:
            fingerprint, job_id = staged.fingerprint, staged.job_id
        logs.bind(job_id=job_id)
        if await self._poison.refuse(job_id, tenant, request, fingerprint, duration):
            return await self._store.job(job_id, tenant)
        wait = request.wait_if_short and self._admission.is_short(duration)
        repeat = await self._repeats.find(job_id, tenant, request, fingerprint, duration)
        if repeat is not None:
            if staged is not None:
                await self._store.delete_audio(job_id)
            logs.bind(job_id=repeat.job_id)
            log.info("job_repeated", how=repeat.how, tenant=tenant)
            if wait:
                await self._wait_for_end(repeat.job_id, tenant, owner=False)
            return await self._store.job(repeat.job_id, tenant)
        queue_only = request.routing_policy == pb.ROUTING_POLICY_QUEUE
        try:
            # An upload's parts are in the store already, counted there.
            stored_now = 0 if content is None else len(content)
            route = await self._admission.admit(
                duration, queue_only=queue_only, audio_bytes=stored_now
            )
            await self._start(job_id, tenant, request, duration, route, fingerprint, content)
        except BaseException:
            with contextlib.suppress(Exception):
                await self._repeats.release(job_id, tenant, request, fingerprint)
            raise
        del content  # stored: not held while a caller waits
        metrics.job_submitted(route.routing, route.queue)
        log.info(
            "job_accepted",
            routing=route.routing,
            queue=route.queue,
            waits_for_slot=route.waits,
            audio_seconds=round(duration, 2),
            tenant=tenant,
        )
        if wait:
            await self._wait_for_end(job_id, tenant, owner=True)
        return await self._store.job(job_id, tenant)

    async def _start(
        self,
        job_id: str,
        tenant: str,
        request: pb.SubmitJobRequest,
        duration: float,
        route: Route,
        fingerprint: str,
        content: bytes | None,
    ) -> None:
        """Record and start the job. `content` None: the audio is in the store already (an
        upload), and is always planned (its parts are never one chunk's bytes as they stand)."""
        single = route.direct or (content is not None and not self._planner.is_long(duration))
        record = records.new_record(
            tenant=tenant,
            # A direct job waiting for a slot is queued (in this scheduler) until it has one.
            state=schema.RUNNING if route.direct and not route.waits else schema.QUEUED,
            routing=route.routing,
            queue="",
            duration=duration,
            config=request.config,
            filename=request.audio.filename,
            # Direct jobs die with this scheduler; queued jobs are planned by it.
            owner=self._instance,
            chunks_total=1 if single else 0,
            fingerprint=fingerprint,
            budget_seconds=self._budget.seconds(duration, queued=not route.direct),
        )
        record["cache_ttl"] = self._cache_ttl
        record["request_id"] = str(logs.current().get("request_id", ""))
        if not route.direct:
            await self._planner.submit(job_id, record, content, duration, route.queue)
            return
        try:
            await self._direct.start(job_id, record, request, duration, route.reserved)
        except BaseException:
            self._admission.withdraw(route, duration)
            raise

    async def _wait_for_end(self, job_id: str, tenant: str, *, owner: bool) -> None:
        """Follow the job to its end: a direct job of this scheduler in-process, any other
        through its events. If the caller that created it goes away first, cancel the job
        (unless other submissions share it)."""
        try:
            if await self._direct.wait(job_id):
                return
            async for message in self._store.watch(job_id, tenant, 0):
                if records.is_terminal(message):
                    return
        except asyncio.CancelledError:
            if owner:
                task = asyncio.create_task(self._cancellation.cancel_if_alone(job_id, tenant))
                self._background.add(task)
                task.add_done_callback(self._background.discard)
            raise
