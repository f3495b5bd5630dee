"""Job metrics counted by whichever process records the event: the scheduler or a queue worker.

Some of these are incremented in RQ work horses, where the worker runs prometheus_client in
multiprocess mode (see services.common.metrics.enable_multiprocess). Every metric a horse touches
therefore has labels, so its value is created after the switch.
"""

from __future__ import annotations

from prometheus_client import Counter

from sayit.common.v1 import event_pb2

# Terminal event kind -> job outcome.
_OUTCOMES = {"completed": "succeeded", "failed": "failed", "cancelled": "cancelled"}

JOBS_FINISHED = Counter(
    "sayit_jobs_finished_total",
    "Jobs that reached their end, by outcome (succeeded, failed, cancelled). Counted once per "
    "job by whichever process recorded the end (scheduler or worker): sum over both.",
    ["outcome"],
)
CHUNK_RETRIES = Counter(
    "sayit_chunk_retries_total",
    "Queued pieces of work scheduled to run again, by reason (worker_died, "
    "transcriber_unavailable).",
    ["reason"],
)


def event_recorded(event: event_pb2.JobEvent | None, sequence: int) -> None:
    """Count a job's end when its terminal event was actually appended (sequence > 0): the append
    script appends it once per job, however many processes try."""
    if event is None or sequence <= 0:
        return
    outcome = _OUTCOMES.get(str(event.WhichOneof("kind")))
    if outcome:
        JOBS_FINISHED.labels(outcome).inc()
