"""The RQ side of the scheduler: enqueueing, cancelling and inspecting queued work.

RQ is blocking, so the scheduler calls these from a bounded thread pool. Jobs are enqueued by
dotted path with the JSON serializer; their only argument is the job id (the audio waits under
its own Redis key, never inside RQ's job hash).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import redis
from rq import Queue, Retry
from rq.callbacks import Callback
from rq.command import send_stop_job_command
from rq.exceptions import InvalidJobOperation, NoSuchJobError
from rq.job import Job, JobStatus
from rq.registry import StartedJobRegistry
from rq.scheduler import RQScheduler
from rq.serializers import JSONSerializer

HIGH = "sayit-high"  # short audio that found every direct slot busy
DEFAULT = "sayit-default"  # long audio
QUEUES = (HIGH, DEFAULT)  # workers listen in this order: the first has strict priority

TASK = "services.scheduler.tasks.transcribe_job"
ON_FAILURE = "services.scheduler.tasks.on_job_failure"


@dataclass(frozen=True)
class QueuePolicy:
    # job_timeout = max(minimum, audio seconds × factor + minimum): generous for a loaded CPU.
    timeout_factor: float
    timeout_minimum_seconds: int
    # Attempts after the first, for transient failures only (transcriber unavailable, dead worker).
    retries: int
    retry_intervals: tuple[int, ...]
    result_ttl_seconds: int

    def job_timeout(self, audio_seconds: float) -> int:
        return int(
            max(
                self.timeout_minimum_seconds,
                math.ceil(audio_seconds * self.timeout_factor) + self.timeout_minimum_seconds,
            )
        )


class JobQueue:
    def __init__(
        self, connection: redis.Redis, policy: QueuePolicy, promote_interval_seconds: float
    ) -> None:
        self._connection = connection
        self._policy = policy
        self._queues = {
            name: Queue(name, connection=connection, serializer=JSONSerializer) for name in QUEUES
        }
        # Retries wait in RQ's ScheduledJobRegistry. The scheduler service, not the workers,
        # moves them back to their queue: a worker that dies holding RQ's scheduler lock
        # would otherwise stall every retry for a minute, exactly when a retry is needed.
        self._promoter = RQScheduler(
            list(QUEUES),
            connection=connection,
            interval=max(1, int(promote_interval_seconds)),
            serializer=JSONSerializer,
        )

    def enqueue(
        self, job_id: str, queue: str, audio_seconds: float, meta: dict[str, object]
    ) -> None:
        retry = (
            Retry(max=self._policy.retries, interval=list(self._policy.retry_intervals))
            if self._policy.retries
            else None
        )
        self._queues[queue].enqueue_call(
            TASK,
            args=(job_id,),
            job_id=job_id,
            timeout=self._policy.job_timeout(audio_seconds),
            result_ttl=self._policy.result_ttl_seconds,
            failure_ttl=self._policy.result_ttl_seconds,
            description=f"transcribe jobs/{job_id} ({audio_seconds:.1f} s)",
            meta=meta,
            retry=retry,
            on_failure=Callback(ON_FAILURE),
        )

    def stop(self, job_id: str) -> str:
        """Make sure the RQ job will not run or stops running. Returns what was done."""
        try:
            job = Job.fetch(job_id, connection=self._connection, serializer=JSONSerializer)
        except NoSuchJobError:
            return "absent"
        status = job.get_status(refresh=False)
        if status == JobStatus.STARTED:
            try:
                send_stop_job_command(self._connection, job_id, serializer=JSONSerializer)
                return "stopped"
            except InvalidJobOperation:
                pass
        if status in (JobStatus.QUEUED, JobStatus.SCHEDULED, JobStatus.DEFERRED):
            try:
                job.cancel()
                return "cancelled"
            except InvalidJobOperation:
                return "already-cancelled"
        return str(status)

    def status(self, job_id: str) -> str | None:
        """RQ's status of the job, or None if RQ no longer knows it."""
        try:
            job = Job.fetch(job_id, connection=self._connection, serializer=JSONSerializer)
        except NoSuchJobError:
            return None
        status = job.get_status(refresh=False)
        return str(status.value if hasattr(status, "value") else status)

    def reap_abandoned(self) -> None:
        """Let RQ retry or fail jobs whose worker stopped sending heartbeats."""
        for queue in self._queues.values():
            StartedJobRegistry(queue=queue).cleanup()

    def promote_due_retries(self) -> None:
        """Move retries whose wait is over back to their queue (if this scheduler holds the
        lock; with several scheduler replicas one of them does it)."""
        if self._promoter.acquire_locks():
            self._promoter.enqueue_scheduled_jobs()

    def release(self) -> None:
        """Give up the promotion lock at shutdown so another replica takes over at once."""
        self._promoter.release_locks()

    def depths(self) -> dict[str, int]:
        return {name: queue.count for name, queue in self._queues.items()}
