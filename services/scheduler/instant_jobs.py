"""Jobs answered at once, without a transcriber: a repeat answered from the result cache, or
audio refused because it crashed the engine. Each is recorded like a direct job of this
scheduler, so GetJob, WatchJob and ListJobs show it as any other; the caller then applies the
job's end (completed or failed)."""

from __future__ import annotations

from sayit.common.v1 import event_pb2, job_pb2
from sayit.scheduler.v1 import scheduler_service_pb2 as pb
from services.jobs import changes, records, schema
from services.jobs.store import JobStore


async def create(
    store: JobStore,
    job_id: str,
    tenant: str,
    request: pb.SubmitJobRequest,
    fingerprint: str,
    duration: float,
    instance: str,
) -> None:
    """Record the job as RUNNING direct, with its accepted event."""
    record = records.new_record(
        tenant=tenant,
        state=schema.RUNNING,
        routing=schema.DIRECT,
        queue="",
        duration=duration,
        config=request.config,
        filename=request.audio.filename,
        owner=instance,
        fingerprint=fingerprint,
    )
    accepted = changes.event(
        job_id,
        accepted=event_pb2.JobAccepted(
            routing=job_pb2.ROUTING_DIRECT, audio_duration_seconds=duration
        ),
    )
    await store.create(job_id, record, accepted)
