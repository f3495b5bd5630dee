"""The RQ side of the scheduler: enqueueing, cancelling and inspecting queued work.

RQ is blocking, so the scheduler calls these from a bounded thread pool. A queued SayIt job is
one RQ job per chunk of its audio, with id "<job id>-<chunk index>", enqueued by dotted path
with the JSON serializer; the arguments are the job id and the chunk index (the chunk's audio
waits under its own Redis key, never inside RQ's job hash).
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

TASK = "services.worker.tasks.transcribe_chunk"
ON_FAILURE = "services.worker.failures.on_chunk_failure"


def chunk_job_id(job_id: str, index: int) -> str:
    return f"{job_id}-{index}"


def stop_job(connection: redis.Redis, rq_job_id: str) -> str:
    """Make sure an RQ job will not run or stops running. Returns what was done."""
    try:
        job = Job.fetch(rq_job_id, connection=connection, serializer=JSONSerializer)
    except NoSuchJobError:
        return "absent"
    status = job.get_status(refresh=False)
    if status == JobStatus.STARTED:
        try:
            send_stop_job_command(connection, rq_job_id, serializer=JSONSerializer)
            return "stopped"
        except InvalidJobOperation:
            pass
    if status in (JobStatus.QUEUED, JobStatus.SCHEDULED, JobStatus.DEFERRED):
        try:
            job.cancel()
            return "cancelled"
        except InvalidJobOperation:
            return "already-cancelled"
    return str(status.value if hasattr(status, "value") else status)


def stop_chunks(
    connection: redis.Redis, job_id: str, count: int, skip: int | None = None
) -> dict[str, int]:
    """Stop every chunk of a job (but `skip`); how many chunks ended up in which way."""
    outcomes: dict[str, int] = {}
    for index in range(count):
        if index != skip:
            outcome = stop_job(connection, chunk_job_id(job_id, index))
            outcomes[outcome] = outcomes.get(outcome, 0) + 1
    return outcomes


@dataclass(frozen=True)
class QueuePolicy:
    # job_timeout = max(minimum, audio seconds × factor + minimum): generous for a loaded CPU.
    timeout_factor: float
    timeout_minimum_seconds: int
    # Attempts after the first, for transient failures only (transcriber stopped, dead worker).
    # A retry goes to the front of its queue at once: the next free worker with a serving
    # transcriber takes it (workers whose transcriber is down take nothing).
    retries: int
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

    def enqueue_chunk(
        self,
        job_id: str,
        index: int,
        queue: str,
        audio_seconds: float,
        meta: dict[str, object],
    ) -> bool:
        """Queue one chunk of a job; False if it was queued already (a repeated plan)."""
        rq_job_id = chunk_job_id(job_id, index)
        if Job.exists(rq_job_id, connection=self._connection):
            return False
        retry = (
            Retry(max=self._policy.retries, enqueue_at_front=True) if self._policy.retries else None
        )
        self._queues[queue].enqueue_call(
            TASK,
            args=(job_id, index),
            job_id=rq_job_id,
            timeout=self._policy.job_timeout(audio_seconds),
            result_ttl=self._policy.result_ttl_seconds,
            failure_ttl=self._policy.result_ttl_seconds,
            description=f"transcribe chunk {index} of jobs/{job_id} ({audio_seconds:.1f} s)",
            # audio_seconds: read by backpressure (queued audio, measured speed).
            meta={**meta, "attempts": self._policy.retries + 1, "audio_seconds": audio_seconds},
            retry=retry,
            on_failure=Callback(ON_FAILURE),
        )
        return True

    def stop_chunks(self, job_id: str, count: int) -> dict[str, int]:
        return stop_chunks(self._connection, job_id, count)

    def chunk_statuses(self, job_id: str, indices: list[int]) -> dict[int, str | None]:
        """RQ's status of each chunk's job (None if RQ no longer knows it)."""
        jobs = Job.fetch_many(
            [chunk_job_id(job_id, i) for i in indices],
            connection=self._connection,
            serializer=JSONSerializer,
        )
        statuses: dict[int, str | None] = {}
        for index, job in zip(indices, jobs, strict=True):
            if job is None:
                statuses[index] = None
                continue
            status = job.get_status(refresh=False)
            statuses[index] = str(status.value if hasattr(status, "value") else status)
        return statuses

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
