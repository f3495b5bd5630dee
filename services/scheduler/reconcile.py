"""Keeping job records truthful when the process running a job disappears.

Every few seconds: refresh this scheduler's heartbeat; let RQ retry or fail jobs whose worker
stopped sending heartbeats; put retries that are due back on their queue; and check every job
not yet ended against whoever should be running it. A queued job that RQ has given up on, or a
direct job whose scheduler is gone, is marked FAILED, so no job stays RUNNING forever.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import Executor
from typing import Any, TypeVar

import grpc

from services.common import logs
from services.common.errors import status_code_number
from services.scheduler import records
from services.scheduler.jobs import JobStore
from services.scheduler.queue import JobQueue

log = logs.get_logger("sayit.scheduler")
T = TypeVar("T")

# RQ states after which a job will not run again.
_GIVEN_UP = {
    "failed": "the queue worker failed while transcribing it",
    "stopped": "its queue worker was stopped",
    "canceled": "it was cancelled in the queue",
    "finished": "its queue worker finished without recording a result",
}


class Reconciler:
    def __init__(
        self,
        store: JobStore,
        job_queue: JobQueue,
        executor: Executor,
        *,
        instance: str,
        interval_seconds: float,
    ) -> None:
        self._store = store
        self._queue = job_queue
        self._executor = executor
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
        for job_id in await self._store.active_ids():
            await self._check(job_id)

    async def _check(self, job_id: str) -> None:
        record = await self._store.raw_record(job_id)
        state = records.state_of(record) if record else ""
        request_id = records.text(record, "request_id") if record else ""
        if not record or state in records.TERMINAL:
            await self._store.untrack(job_id)
            return
        if records.text(record, "routing") == records.DIRECT:
            owner = records.text(record, "owner")
            if owner != self._instance and not await self._store.alive(owner):
                await self._fail(
                    job_id, "the scheduler running it stopped; submit it again", request_id
                )
            return
        status = await self._blocking(self._queue.status, job_id)
        if status is None:
            await self._fail(job_id, "the queue lost it", request_id)
        elif status in _GIVEN_UP:
            await self._fail(job_id, _GIVEN_UP[status], request_id)

    async def _fail(self, job_id: str, reason: str, request_id: str) -> None:
        change = records.failed_change(
            job_id, status_code_number(grpc.StatusCode.UNAVAILABLE), reason
        )
        _, state = await self._store.apply(job_id, change)
        if state == records.FAILED:
            log.warning(
                "job_reconciled_failed", job_id=job_id, request_id=request_id, reason=reason
            )
            await self._store.delete_audio(job_id)
        await self._store.untrack(job_id)
