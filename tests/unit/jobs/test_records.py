"""Job events as the scheduler and the queue worker write them and read them back."""

from __future__ import annotations

import json

from sayit.common.v1 import event_pb2, job_pb2, transcription_pb2
from services.common.names import new_job_id
from services.jobs import changes, records, schema


def test_an_event_carries_the_jobs_name_written_and_read_back() -> None:
    job_id = new_job_id()
    written = changes.event(job_id, cancelled=event_pb2.JobCancelled(reason="stop"))
    assert (written.name, written.job_id) == (f"jobs/{job_id}", job_id)
    read = records.parse_event(job_id, b"0-4", {b"e": written.SerializeToString()})
    assert (read.name, read.job_id, read.sequence) == (f"jobs/{job_id}", job_id, 4)
    assert read.cancelled.reason == "stop"


def test_a_compact_progress_entry_reads_back_with_the_jobs_name() -> None:
    job_id = new_job_id()
    entry = {"ms": 1_000, "d": 10.0, "t": 40.0, "f": 0.25, "cd": 0, "ct": 2}
    read = records.parse_event(job_id, "0-3", {b"p": json.dumps(entry).encode()})
    assert (read.name, read.job_id, read.sequence) == (f"jobs/{job_id}", job_id, 3)
    assert read.progress.audio_seconds_done == 10.0 and read.progress.chunks_total == 2


def test_an_event_stored_before_events_had_a_name_gets_one() -> None:
    job_id = new_job_id()
    old = event_pb2.JobEvent(job_id=job_id, cancelled=event_pb2.JobCancelled(reason="stop"))
    read = records.parse_event(job_id, b"0-2", {b"e": old.SerializeToString()})
    assert read.name == f"jobs/{job_id}"


def test_a_queued_jobs_message_says_queued_and_keeps_the_rq_queue_inside() -> None:
    job_id = new_job_id()
    record = records.new_record(
        tenant="acme",
        state=schema.QUEUED,
        routing=schema.QUEUED_ROUTE,
        queue="sayit-default",
        duration=100.0,
        config=transcription_pb2.TranscriptionConfig(language_code="ko"),
        filename="a.wav",
    )
    # As HGETALL returns it: bytes keys and values.
    raw = {k.encode(): v if isinstance(v, bytes) else str(v).encode() for k, v in record.items()}
    assert records.text(raw, "queue") == "sayit-default"  # the scheduler's own business
    job = records.job_message(job_id, raw)
    assert (job.name, job.routing) == (f"jobs/{job_id}", job_pb2.ROUTING_QUEUED)
    assert (job.state, job.config.language_code) == (job_pb2.JOB_STATE_QUEUED, "ko")
    assert "queue" not in job_pb2.TranscriptionJob.DESCRIPTOR.fields_by_name
    assert "queue" not in event_pb2.JobAccepted.DESCRIPTOR.fields_by_name
