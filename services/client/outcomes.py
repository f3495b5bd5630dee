"""How a job ended, read from its terminal event or its ended state: the transcript, or a
JobError when it failed or was cancelled."""

from __future__ import annotations

import grpc

from sayit.common.v1 import event_pb2, job_pb2
from sayit.common.v1 import transcription_pb2 as tpb
from services.client.errors import JobError, status_code

TERMINAL_EVENTS = ("completed", "failed", "cancelled")
ENDED_STATES = (
    job_pb2.JOB_STATE_SUCCEEDED,
    job_pb2.JOB_STATE_FAILED,
    job_pb2.JOB_STATE_CANCELLED,
)


def is_terminal(event: event_pb2.JobEvent) -> bool:
    return event.WhichOneof("kind") in TERMINAL_EVENTS


def transcript_of(job_name: str, event: event_pb2.JobEvent) -> tpb.Transcript:
    """The transcript of a terminal event; JobError if the job failed or was cancelled."""
    kind = event.WhichOneof("kind")
    if kind == "completed":
        return event.completed.transcript
    if kind == "failed":
        error = event.failed.error
        raise JobError(job_name, status_code(error.code), error.message or "the job failed")
    if kind == "cancelled":
        raise JobError(job_name, grpc.StatusCode.CANCELLED, event.cancelled.reason or "cancelled")
    raise ValueError(f"not a terminal event: {kind}")


def transcript_of_job(job: job_pb2.TranscriptionJob) -> tpb.Transcript:
    """The transcript of an ended job; JobError if it failed or was cancelled."""
    if job.state == job_pb2.JOB_STATE_SUCCEEDED:
        return job.transcript
    if job.state == job_pb2.JOB_STATE_CANCELLED:
        raise JobError(job.name, grpc.StatusCode.CANCELLED, "cancelled")
    if job.state == job_pb2.JOB_STATE_FAILED:
        raise JobError(job.name, status_code(job.error.code), job.error.message or "failed")
    raise ValueError(f"{job.name} has not ended")
