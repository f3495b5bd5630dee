"""The RQ worker class that runs chunks beside one transcriber.

It is RQ's SpawnWorker (each chunk in a fresh work horse process, started with posix_spawn, so
this process may hold gRPC channels: it asks its transcriber's health), with these changes:
- a chunk is abandoned after one heartbeat interval + `heartbeat_grace_seconds` of silence, not
  RQ's fixed minute, so a dead worker's chunk runs elsewhere within seconds;
- no chunk is taken while the transcriber is not serving (it would only fail and burn a retry):
  the worker pauses before dequeueing, and gives back, at the front of its queue, a chunk it
  took in the moment its transcriber died; a SIGTERM held back while RQ registered the worker
  (see services.worker.__main__) is let in there, where RQ stops cleanly;
- it remembers that a shutdown was asked for, so its caller knows whether RQ's loop ended for
  that or for an error (a Redis outage longer than the client's patience);
- stopping its command thread is bounded (see `unsubscribe`).
"""

from __future__ import annotations

import signal
from typing import Any

from rq.worker import SpawnWorker

from services.common import logs
from services.worker.transcriber_monitor import TranscriberMonitor

log = logs.get_logger("sayit.worker")
SHUTDOWN_SIGNALS = {signal.SIGTERM, signal.SIGINT}


class ChunkWorker(SpawnWorker):
    heartbeat_grace_seconds = 10
    # RQ backs off up to 60 s between dequeue attempts once Redis is down for longer than the
    # client's patience; after Redis returns that would leave queued chunks waiting a minute.
    max_connection_wait_time = 5.0

    def __init__(
        self, *args: Any, transcriber: TranscriberMonitor | None = None, **kwargs: Any
    ) -> None:
        # RQ rebuilds this class in each work horse without a transcriber: horses only run jobs.
        super().__init__(*args, **kwargs)
        self.transcriber = transcriber
        self.shutdown_requested = False

    def request_stop(self, signum: Any, frame: Any) -> None:
        self.shutdown_requested = True
        super().request_stop(signum, frame)

    def get_heartbeat_ttl(self, job: Any, working_time: float = 0.0) -> int:
        return int(self.job_monitoring_interval + self.heartbeat_grace_seconds)

    def dequeue_job_and_maintain_ttl(
        self, timeout: int | None, max_idle_time: int | None = None
    ) -> Any:
        # RQ's signal handlers are in place by now (see services.worker.__main__): a SIGTERM
        # held back while RQ registered this worker is delivered here, where RQ stops cleanly.
        signal.pthread_sigmask(signal.SIG_UNBLOCK, SHUTDOWN_SIGNALS)
        self._wait_for_transcriber()
        return super().dequeue_job_and_maintain_ttl(timeout, max_idle_time)

    def execute_job(self, job: Any, queue: Any) -> None:
        assert self.transcriber is not None
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

    def unsubscribe(self) -> None:
        # RQ stops its command thread with redis-py's PubSubWorkerThread.stop(), which (in
        # redis-py 8) waits for the thread without a bound; after the unsubscribe the thread can
        # sit up to a minute waiting for a subscription, so a stopping worker hung that long.
        # The same steps, with the one-second bound RQ means to give it.
        if self.pubsub_thread:
            self.pubsub.unsubscribe()
            self.pubsub_thread.stop(timeout=1.0)
            self.pubsub.close()

    def _wait_for_transcriber(self) -> None:
        assert self.transcriber is not None
        if self.transcriber.serving():
            return
        log.warning(
            "worker_paused", reason="transcriber not serving", transcriber=self.transcriber.status
        )
        while not self.transcriber.wait_serving(self.job_monitoring_interval):
            self.heartbeat()
        log.info("worker_resumed")

    def _give_back(self, job: Any, queue: Any) -> None:
        with self.connection.pipeline() as pipeline:
            queue.push_job_id(job.id, pipeline=pipeline, at_front=True)
            if len(self.queues) == 1:  # RQ moved it to the intermediate queue (LMOVE)
                pipeline.lrem(queue.intermediate_queue_key, 1, job.id)
            pipeline.execute()
        log.warning("job_given_back", rq_job=job.id, transcriber=self.transcriber.status)  # type: ignore[union-attr]
