"""Cancelling a job: record its end, stop whatever runs it (a direct task or a live session
here, the planner, its chunks on the queue) and drop its audio."""

from __future__ import annotations

import asyncio
from concurrent.futures import Executor

from sayit.common.v1 import job_pb2
from services.common import logs
from services.common.errors import FailedPrecondition
from services.jobs import changes, records, schema
from services.jobs.queue import JobQueue
from services.jobs.store import JobStore
from services.scheduler.direct import DirectJobs
from services.scheduler.planner import Planner

log = logs.get_logger("sayit.scheduler")


class Cancellation:
    def __init__(
        self,
        store: JobStore,
        direct: DirectJobs,
        planner: Planner,
        job_queue: JobQueue,
        executor: Executor,
    ) -> None:
        self._store = store
        self._direct = direct
        self._planner = planner
        self._queue = job_queue
        self._executor = executor

    async def cancel(self, job_id: str, tenant: str, reason: str) -> job_pb2.TranscriptionJob:
        """FAILED_PRECONDITION if the job has already ended."""
        record = await self._store.record(job_id, tenant)
        state = records.state_of(record)
        if state not in schema.ACTIVE:
            raise FailedPrecondition(
                f"job jobs/{job_id} has already ended ({state.lower()}); only queued or running "
                "jobs can be cancelled"
            )
        state = (await self._store.apply(job_id, changes.cancelled_change(job_id, reason))).state
        if state != schema.CANCELLED:
            raise FailedPrecondition(f"job jobs/{job_id} ended ({state.lower()}) before the cancel")
        task = self._direct.task_of(job_id) or self._planner.tasks.get(job_id)
        if task is not None:
            task.cancel()
        # Re-read: the plan may have been recorded meanwhile.
        count = int(records.number(await self._store.record(job_id, tenant), "chunks_total"))
        if records.text(record, "routing") == schema.QUEUED_ROUTE and count:
            outcome = await asyncio.get_running_loop().run_in_executor(
                self._executor, self._queue.stop_chunks, job_id, count
            )
            log.info("job_cancelled", reason=reason, chunks=count, queue_actions=outcome)
        else:
            log.info("job_cancelled", reason=reason)
        await self._store.delete_all_audio(job_id, count)
        return await self._store.job(job_id, tenant)

    async def cancel_if_alone(self, job_id: str, tenant: str) -> None:
        """Cancel a job whose caller went away, unless other submissions share it."""
        try:
            record = await self._store.record(job_id, tenant)
            if records.number(record, "attached") > 0:
                return
            await self.cancel(job_id, tenant, "the caller cancelled or its deadline passed")
        except FailedPrecondition:
            pass
        except Exception as error:
            log.warning("cancel_failed", job_id=job_id, error=str(error))
