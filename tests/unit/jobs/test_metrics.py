"""Job metrics (services.jobs.metrics)."""

from __future__ import annotations

from sayit.common.v1 import event_pb2
from services.jobs import metrics as job_metrics


def test_job_outcomes_count_appended_terminal_events_only() -> None:
    counter = job_metrics.JOBS_FINISHED

    def count(outcome: str) -> float:
        return counter.labels(outcome)._value.get()

    before = {o: count(o) for o in ("succeeded", "failed", "cancelled")}
    completed = event_pb2.JobEvent(completed=event_pb2.JobCompleted())
    job_metrics.event_recorded(completed, 7)
    job_metrics.event_recorded(completed, 0)  # the job had already ended: not appended
    job_metrics.event_recorded(event_pb2.JobEvent(progress={}), 3)
    job_metrics.event_recorded(event_pb2.JobEvent(cancelled={}), 4)
    job_metrics.event_recorded(None, 5)
    assert count("succeeded") - before["succeeded"] == 1
    assert count("cancelled") - before["cancelled"] == 1
    assert count("failed") - before["failed"] == 0
