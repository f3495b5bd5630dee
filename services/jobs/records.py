"""A job's record hash: how a new one is written, and how it and the job's events are read
back as the public messages."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from sayit.common.v1 import event_pb2, job_pb2, transcription_pb2
from services.common.names import job_name
from services.jobs.changes import TERMINAL_EVENTS, timestamp
from services.jobs.schema import DIRECT, QUEUED_ROUTE, RUNNING, now_ms

_STATES = {
    "QUEUED": job_pb2.JOB_STATE_QUEUED,
    "RUNNING": job_pb2.JOB_STATE_RUNNING,
    "SUCCEEDED": job_pb2.JOB_STATE_SUCCEEDED,
    "FAILED": job_pb2.JOB_STATE_FAILED,
    "CANCELLED": job_pb2.JOB_STATE_CANCELLED,
}
_ROUTES = {DIRECT: job_pb2.ROUTING_DIRECT, QUEUED_ROUTE: job_pb2.ROUTING_QUEUED}

# A record hash as redis-py returns it (bytes keys and values; its types are looser).
RawRecord = Mapping[Any, Any]


def new_record(
    *,
    tenant: str,
    state: str,
    routing: str,
    queue: str,
    duration: float,
    config: transcription_pb2.TranscriptionConfig,
    filename: str,
    owner: str = "",
    chunks_total: int = 1,
    fingerprint: str = "",
    budget_seconds: float = 0.0,
) -> dict[str, bytes | str | int | float]:
    created = now_ms()
    record: dict[str, bytes | str | int | float] = {
        "tenant": tenant,
        "state": state,
        "routing": routing,
        "queue": queue,
        "duration": duration,
        "created_ms": created,
        "fraction": 0.0,
        "done_s": 0.0,
        "chunks_done": 0,
        "chunks_total": chunks_total,
        "seq": 0,
        "config": config.SerializeToString(),
        "filename": filename[:255],
        "owner": owner,
        # Audio + effective config + model, for the result cache and in-flight sharing.
        "fingerprint": fingerprint,
        # How long the job may take from its creation before the reconciler fails it (0: none;
        # see services.scheduler.budget).
        "budget_s": budget_seconds,
    }
    if state == RUNNING:
        record["started_ms"] = created
    return record


def text(record: RawRecord, key: str, default: str = "") -> str:
    value = record.get(key.encode())
    return value.decode() if value is not None else default


def number(record: RawRecord, key: str) -> float:
    value = record.get(key.encode())
    return float(value) if value else 0.0


def state_of(record: RawRecord) -> str:
    return text(record, "state")


def tenant_of(record: RawRecord) -> str:
    return text(record, "tenant")


def job_message(job_id: str, record: RawRecord) -> job_pb2.TranscriptionJob:
    """The public TranscriptionJob for a record hash (as read with HGETALL)."""
    total = number(record, "duration")
    job = job_pb2.TranscriptionJob(
        name=job_name(job_id),
        state=_STATES.get(state_of(record), job_pb2.JOB_STATE_UNSPECIFIED),
        routing=_ROUTES.get(text(record, "routing"), job_pb2.ROUTING_UNSPECIFIED),
        progress=job_pb2.JobProgress(
            fraction=number(record, "fraction"),
            audio_seconds_done=number(record, "done_s"),
            audio_seconds_total=total,
            chunks_done=int(number(record, "chunks_done")),
            chunks_total=int(number(record, "chunks_total")),
        ),
        audio_duration_seconds=total,
        filename=text(record, "filename"),
    )
    for key, target in (
        ("created_ms", job.create_time),
        ("started_ms", job.start_time),
        ("ended_ms", job.end_time),
    ):
        if record.get(key.encode()):
            target.FromMilliseconds(int(number(record, key)))
    if record.get(b"config"):
        job.config.ParseFromString(record[b"config"])
    if record.get(b"transcript"):
        job.transcript.ParseFromString(record[b"transcript"])
    elif record.get(b"error"):
        job.error.ParseFromString(record[b"error"])
    return job


def summarize(job: job_pb2.TranscriptionJob) -> job_pb2.TranscriptionJob:
    """The job as JOB_VIEW_BASIC lists it: its transcript without `text` and `segments` (the
    parts that grow with the audio), so a page's size does not depend on the jobs' lengths."""
    if job.HasField("transcript"):
        job.transcript.ClearField("text")
        job.transcript.ClearField("segments")
    return job


def parse_event(job_id: str, stream_id: bytes | str, fields: RawRecord) -> event_pb2.JobEvent:
    """A JobEvent read back from the stream; its sequence is the stream entry's id. Progress
    written by the append script itself comes as a compact JSON `p` entry."""
    if b"e" in fields:
        message = event_pb2.JobEvent.FromString(fields[b"e"])
    else:
        p = json.loads(fields[b"p"])
        message = event_pb2.JobEvent(
            job_id=job_id,
            time=timestamp(int(p["ms"])),
            progress=job_pb2.JobProgress(
                fraction=float(p["f"]),
                audio_seconds_done=min(float(p["d"]), float(p["t"])),
                audio_seconds_total=float(p["t"]),
                chunks_done=int(p["cd"]),
                chunks_total=int(p["ct"]),
            ),
        )
    raw = stream_id.decode() if isinstance(stream_id, bytes) else stream_id
    message.sequence = int(raw.split("-", 1)[1])
    # Set here too: `p` entries carry no name, nor do events appended before JobEvent had one.
    message.name = job_name(job_id)
    return message


def stream_id(sequence: int) -> str:
    return f"0-{sequence}"


def is_terminal(message: event_pb2.JobEvent) -> bool:
    return message.WhichOneof("kind") in TERMINAL_EVENTS
