"""Keeping job records truthful when the process running a job disappears.

Every few seconds: refresh this scheduler's heartbeat; let RQ retry or fail chunks whose worker
stopped sending heartbeats; put retries that are due back on their queue; and check every job
not yet ended against its budget and against whoever should be running it:
- a job past its processing budget (services.scheduler.budget) is failed, DEADLINE_EXCEEDED,
  whatever its routing, and its work stopped; a live session has none (its record's budget is
  0: it lasts as long as its caller sends audio), so only the checks below hold it;
- a direct job whose scheduler is gone is failed; so is a direct job of this scheduler whose
  task is gone (it ended without recording the end, e.g. that write hit a Redis failure), once
  two checks in a row found it so (a job being created has its record a moment before its task);
- a queued job nobody is planning (its scheduler died) is planned here;
- a planned job's unfinished chunks are checked with RQ: a chunk RQ gave up on fails the job,
  a chunk RQ lost (never queued, or gone) is queued again while its audio is there;
- a job whose chunks have all finished but that did not complete (the worker merging it died)
  is merged here.
So no job stays QUEUED or RUNNING forever.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import Executor
from typing import Any, TypeVar

import grpc
import structlog

from services.common import logs
from services.jobs import changes, completion, records, schema
from services.jobs.queue import JobQueue
from services.jobs.store import JobStore
from services.scheduler import budget
from services.scheduler.direct import DirectJobs
from services.scheduler.planner import Planner

log = logs.get_logger("sayit.scheduler")
T = TypeVar("T")

# RQ states after which a chunk will not run again.
_GIVEN_UP = {
    "failed": "the queue worker failed while transcribing it",
    "stopped": "its queue worker was stopped",
    "canceled": "it was cancelled in the queue",
    "finished": "its queue worker finished without recording a result",
}
# A plan is recorded just before its chunks are queued: give that a moment before calling a
# missing chunk lost.
_QUEUEING_GRACE_MS = 10_000


class Reconciler:
    def __init__(
        self,
        store: JobStore,
        job_queue: JobQueue,
        planner: Planner,
        executor: Executor,
        direct: DirectJobs,
        *,
        instance: str,
        interval_seconds: float,
    ) -> None:
        self._store = store
        self._queue = job_queue
        self._planner = planner
        self._executor = executor
        self._direct = direct
        # This scheduler's direct jobs found without a task at the last check.
        self._taskless: set[str] = set()
        self._instance = instance
        self._interval = interval_seconds

    async def _blocking(self, fn: Callable[..., T], *args: Any) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn, *args)

    async def heartbeat(self) -> None:
        await self._store.heartbeat(self._instance, int(self._interval * 4) + 5)

    async def run_forever(self) -> None:
        while True:
            try:
                await self.once()
            except Exception as error:  # Redis down etc.: keep going, it will come back
                log.warning("reconcile_failed", error=str(error))
            await asyncio.sleep(self._interval)

    async def once(self) -> None:
        await self.heartbeat()
        await self._blocking(self._queue.reap_abandoned)
        await self._blocking(self._queue.promote_due_retries)
        active = await self._store.active_ids()
        self._taskless &= set(active)
        for job_id in active:
            try:
                await self._check(job_id)
            except Exception as error:
                log.warning("reconcile_job_failed", job_id=job_id, error=str(error))

    async def _check(self, job_id: str) -> None:
        record = await self._store.raw_record(job_id)
        # What is logged about the job here carries its ids, as in the request that made it.
        request_id = records.text(record, "request_id") if record else ""
        with structlog.contextvars.bound_contextvars(job_id=job_id, request_id=request_id):
            await self._check_record(job_id, record)

    async def _check_record(self, job_id: str, record: records.RawRecord) -> None:
        state = records.state_of(record) if record else ""
        if not record or state in schema.TERMINAL:
            await self._store.untrack(job_id)
            return
        owner = records.text(record, "owner")
        if await self._over_budget(job_id, record):
            return
        if records.text(record, "routing") == schema.DIRECT:
            if owner == self._instance:
                await self._check_own_direct(job_id, record)
            elif not await self._store.alive(owner):
                await self._fail(
                    job_id, record, "the scheduler running it stopped; submit it again"
                )
            return
        if records.text(record, "planned") != "1":
            await self._plan_orphan(job_id, record, owner)
            return
        count = int(records.number(record, "chunks_total"))
        finished = await self._store.chunks.finished(job_id, count)
        if all(finished):
            outcome = await completion.finish(self._store, job_id)
            log.warning("job_merged_by_reconciler", job_id=job_id, outcome=outcome)
            return
        pending = [i for i, done in enumerate(finished) if not done]
        statuses = await self._blocking(self._queue.chunk_statuses, job_id, pending)
        lost = [i for i, status in statuses.items() if status is None]
        for index, status in statuses.items():
            if status in _GIVEN_UP:
                reason = f"chunk {index + 1} of {count}: {_GIVEN_UP[status]}"
                await self._fail(job_id, record, reason if count > 1 else _GIVEN_UP[status])
                return
        if lost and schema.now_ms() - records.number(record, "planned_ms") > _QUEUEING_GRACE_MS:
            await self._requeue(job_id, record, lost)

    async def _over_budget(self, job_id: str, record: records.RawRecord) -> bool:
        """Fail the job if it has run past its processing budget; True if so."""
        allowed = records.number(record, "budget_s")
        spent = (schema.now_ms() - records.number(record, "created_ms")) / 1000
        if not allowed or spent <= allowed:
            return False
        message = budget.exceeded_message(allowed, records.number(record, "duration"))
        await self._fail(job_id, record, message, grpc.StatusCode.DEADLINE_EXCEEDED)
        return True

    async def _check_own_direct(self, job_id: str, record: records.RawRecord) -> None:
        if self._direct.task_of(job_id) is not None:
            self._taskless.discard(job_id)
        elif job_id not in self._taskless:
            self._taskless.add(job_id)  # maybe being created: look again next time
        else:
            self._taskless.discard(job_id)
            await self._fail(
                job_id,
                record,
                "the job's transcription ended but its result could not be recorded; "
                "submit it again",
            )

    async def _plan_orphan(self, job_id: str, record: records.RawRecord, owner: str) -> None:
        if self._planner.running(job_id):
            return
        if owner != self._instance and await self._store.alive(owner):
            return  # its scheduler is planning it
        applied = await self._store.apply(job_id, changes.claim_planning_change(self._instance))
        if applied.applied:
            log.warning("job_replanned", job_id=job_id, previous_owner=owner)
            self._planner.start(job_id, self._planner.meta(records.text(record, "request_id")))

    async def _requeue(self, job_id: str, record: records.RawRecord, lost: list[int]) -> None:
        count = int(records.number(record, "chunks_total"))
        for index in lost:
            if not await self._store.chunks.audio_exists(job_id, index):
                await self._fail(job_id, record, f"chunk {index + 1} of {count} lost its audio")
                return
        durations = await self._store.chunks.durations(job_id, count)
        log.warning("chunks_requeued", job_id=job_id, chunks=lost)
        meta = self._planner.meta(records.text(record, "request_id"))
        await self._planner.enqueue(job_id, records.text(record, "queue"), durations, meta)

    async def _fail(
        self,
        job_id: str,
        record: records.RawRecord,
        reason: str,
        code: grpc.StatusCode = grpc.StatusCode.UNAVAILABLE,
    ) -> None:
        """Fail the job (its terminal event ends its watchers' streams) and stop its work: its
        direct task here, or its chunks in the queue."""
        if await self._store.fail(job_id, code, reason):
            log.warning("job_reconciled_failed", job_id=job_id, code=code.name, reason=reason)
            task = self._direct.task_of(job_id)
            if task is not None:
                task.cancel()
            elif records.text(record, "routing") == schema.QUEUED_ROUTE:
                count = int(records.number(record, "chunks_total"))
                if count:
                    await self._blocking(self._queue.stop_chunks, job_id, count)
        await self._store.untrack(job_id)
