"""The RQ worker class that runs chunks beside one transcriber."""

from __future__ import annotations

import ctypes
import os
import signal
import socket
import time
from datetime import UTC, datetime
from typing import Any

import redis
from rq import Worker
from rq.job import JobStatus
from rq.utils import utcparse
from rq.worker_registration import unregister

from services.common import logs
from services.worker.transcriber_watch import TranscriberMonitor

_PR_SET_PDEATHSIG = 1
_REDIS_ERRORS = (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError)

log = logs.get_logger("sayit.worker")


class SayItWorker(Worker):
    # A job is abandoned once its worker has been silent this long beyond one heartbeat.
    heartbeat_grace_seconds = 10
    # RQ backs off up to 60 s between dequeue attempts while Redis is down; after a Redis
    # restart that would leave queued chunks waiting for a minute.
    max_connection_wait_time = 5.0

    def __init__(self, *args: Any, transcriber: TranscriberMonitor, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.transcriber = transcriber
        self._paused = False
        self.shutdown_requested = False

    def request_stop(self, signum: Any, frame: Any) -> None:
        # RQ ends its loop quietly when a shutdown finds it idle; remember that it was asked.
        self.shutdown_requested = True
        super().request_stop(signum, frame)

    def get_heartbeat_ttl(self, job: Any, working_time: float = 0.0) -> int:
        return int(self.job_monitoring_interval + self.heartbeat_grace_seconds)

    def main_work_horse(self, job: Any, queue: Any) -> None:
        _die_with_parent()
        super().main_work_horse(job, queue)

    # --- no work without a transcriber -------------------------------------------------------

    def dequeue_job_and_maintain_ttl(
        self, timeout: int | None, max_idle_time: int | None = None
    ) -> Any:
        while not self.transcriber.serving():
            if not self._paused:
                self._paused = True
                log.warning(
                    "worker_paused",
                    reason="transcriber not serving",
                    transcriber=self.transcriber.status,
                )
            self.heartbeat()
            self.transcriber.wait_serving(self.job_monitoring_interval)
        if self._paused:
            self._paused = False
            log.info("worker_resumed")
        return super().dequeue_job_and_maintain_ttl(timeout, max_idle_time)

    def execute_job(self, job: Any, queue: Any) -> None:
        # The transcriber may have died while this worker waited on the queue: give the job
        # back (at the front, no retry spent) rather than run it into a dead transcriber.
        if not self.transcriber.serving():
            self._give_back(job, queue)
            return
        # RQ's own lines about this job (timeouts, a killed work horse) carry its ids too.
        meta = job.meta or {}
        logs.bind(job_id=job.id, request_id=meta.get("request_id") or job.id[:16])
        try:
            super().execute_job(job, queue)
        finally:
            logs.unbind("job_id", "request_id")
        try:
            finished = job.get_status(refresh=True) == JobStatus.FINISHED
        except Exception:  # Redis down, job gone: assume the worst
            finished = False
        if not finished:
            # It failed, perhaps because the transcriber just died: know that before taking
            # the next job (its retry, at the front of the queue, would be the next).
            self.transcriber.refresh()

    def _give_back(self, job: Any, queue: Any) -> None:
        with self.connection.pipeline() as pipeline:
            queue.push_job_id(job.id, pipeline=pipeline, at_front=True)
            if len(self.queues) == 1:  # RQ moved it to the intermediate queue (LMOVE)
                pipeline.lrem(queue.intermediate_queue_key, 1, job.id)
            pipeline.execute()
        log.warning("job_given_back", rq_job=job.id, transcriber=self.transcriber.status)

    # --- riding out Redis outages -----------------------------------------------------------

    def maintain_heartbeats(self, job: Any, execution: Any) -> None:
        # A Redis restart must not end the worker (and with it, the horse's chunk): skip the
        # heartbeat and keep watching the horse; the next one goes through.
        try:
            super().maintain_heartbeats(job, execution)
        except _REDIS_ERRORS as error:
            log.warning("heartbeat_failed", error=str(error))

    def register_birth(self) -> None:
        self._clear_stale_registration()
        super().register_birth()

    def _clear_stale_registration(self) -> None:
        """Take over this worker's name from a registration that is ours (an earlier round of
        the loop in this process) or whose worker stopped sending heartbeats (it was killed),
        instead of refusing to start as RQ does."""
        stale_after = 3 * max(self.dequeue_timeout, self.job_monitoring_interval)
        waiting = False
        while True:
            fields: dict[bytes, bytes] = self.connection.hgetall(self.key)  # type: ignore[assignment]
            if not fields or b"death" in fields:
                return
            ours = (
                fields.get(b"pid") == str(os.getpid()).encode()
                and fields.get(b"hostname") == socket.gethostname().encode()
            )
            last = fields.get(b"last_heartbeat")
            age = (
                (datetime.now(UTC) - utcparse(last.decode()).replace(tzinfo=UTC)).total_seconds()
                if last
                else stale_after + 1
            )
            if ours or age > stale_after:
                unregister(self)
                self.connection.delete(self.key)
                return
            if not waiting:
                waiting = True
                log.warning("worker_name_in_use", name=self.name, heartbeat_age=round(age, 1))
            time.sleep(1.0)


def _die_with_parent() -> None:
    """SIGKILL this work horse when its worker dies, so no orphan keeps a job RQ will retry."""
    parent = os.getppid()
    try:
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    except (OSError, AttributeError):  # not Linux: the heartbeat timeout still recovers the job
        return
    if os.getppid() != parent:
        os._exit(1)
