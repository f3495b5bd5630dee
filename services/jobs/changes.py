"""Changes to a job: each is one call of the append script (append_event.lua), which checks
the job's state, updates its record and appends its event atomically. That is what makes
sequences strictly increasing, progress never go backwards, and the terminal event unique even
when the scheduler and several workers write at once.

A queued job is transcribed in chunks (one RQ job each). A chunk's progress is summed into the
job's progress inside the script, which then writes the progress event itself (a compact `p`
entry), so concurrent chunks never publish a stale total.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from importlib import resources
from typing import Any

from google.protobuf.timestamp_pb2 import Timestamp

from sayit.common.v1 import event_pb2, job_pb2, transcription_pb2
from sayit.transcriber.v1 import transcriber_service_pb2 as transcriber_pb2
from services.common.names import job_name
from services.jobs.schema import (
    ACTIVE,
    CANCELLED,
    FAILED,
    QUEUED,
    QUEUED_ROUTE,
    RUNNING,
    SUCCEEDED,
    now_ms,
)

# The script's arguments are described at its top.
APPEND_SCRIPT = resources.files("services.jobs").joinpath("append_event.lua").read_text()
TERMINAL_EVENTS = ("completed", "failed", "cancelled")


@dataclass(frozen=True)
class Applied:
    """What the append script did with a change."""

    sequence: int  # of the appended event, 0 if none
    state: str  # the job's state after the change
    applied: bool  # the change passed its checks and was written
    complete: bool  # (chunk changes) every chunk of the job has finished

    @classmethod
    def from_reply(cls, reply: Any) -> Applied:
        sequence, state, flags = reply
        state = state.decode() if isinstance(state, bytes) else str(state)
        return cls(int(sequence), state, bool(int(flags) & 1), bool(int(flags) & 2))


@dataclass
class Change:
    """One atomic change to a job: the event to append and the record update it implies."""

    allow: tuple[str, ...]
    event: event_pb2.JobEvent | None = None
    set: dict[str, str | int | float] = field(default_factory=dict)
    progress: float | None = None
    watermark: tuple[str, float, float] | None = None
    # Binary record fields (transcript, error) are set outside the JSON argument.
    binary: dict[str, bytes] = field(default_factory=dict)
    # Binary chunk hash fields (a chunk's transcript).
    chunk_binary: dict[str, bytes] = field(default_factory=dict)
    unplanned: bool = False
    plan: list[tuple[float, float]] | None = None
    chunk: dict[str, int | float | bool] | None = None

    def script_args(self, ttl_seconds: int) -> list[bytes | str]:
        payload = self.event.SerializeToString() if self.event is not None else b""
        spec: dict[str, object] = {"allow": list(self.allow), "set": self.set, "ttl": ttl_seconds}
        if self.progress is not None:
            spec["progress"] = self.progress
        if self.watermark is not None:
            spec["watermark"] = list(self.watermark)
        if self.unplanned:
            spec["unplanned"] = True
        if self.plan is not None:
            spec["plan"] = [list(piece) for piece in self.plan]
        if self.chunk is not None:
            spec["chunk"] = self.chunk
        binary: list[bytes | str] = []
        for prefix, fields in (("r:", self.binary), ("c:", self.chunk_binary)):
            for name, value in fields.items():
                binary += [prefix + name, value]
        return [payload, json.dumps(spec), *binary]


def timestamp(ms: int | None = None) -> Timestamp:
    stamp = Timestamp()
    stamp.FromMilliseconds(ms if ms is not None else now_ms())
    return stamp


def event(job_id: str, **kind: object) -> event_pb2.JobEvent:
    """A JobEvent stamped now; its sequence is set when read back from the stream."""
    return event_pb2.JobEvent(
        name=job_name(job_id),
        job_id=job_id,
        time=timestamp(),
        **kind,  # type: ignore[arg-type]
    )


def progress_message(
    done: float, total: float, chunks_done: int = 0, chunks_total: int = 1
) -> job_pb2.JobProgress:
    fraction = 1.0 if total <= 0 else min(1.0, max(0.0, done / total))
    return job_pb2.JobProgress(
        fraction=fraction,
        audio_seconds_done=min(done, total),
        audio_seconds_total=total,
        chunks_done=chunks_done,
        chunks_total=chunks_total,
    )


def progress_change(job_id: str, progress: job_pb2.JobProgress) -> Change:
    return Change(
        allow=(RUNNING,),
        event=event(job_id, progress=progress),
        progress=round(progress.fraction, 6),
        set={
            "done_s": progress.audio_seconds_done,
            "chunks_done": progress.chunks_done,
            "chunks_total": progress.chunks_total,
        },
    )


def start_change(job_id: str, total_seconds: float, chunks_total: int = 1) -> Change:
    """QUEUED -> RUNNING (a worker picked the job's first chunk up); a no-op for a cancelled
    job or one another chunk started already."""
    return Change(
        allow=(QUEUED,),
        event=event(job_id, progress=progress_message(0.0, total_seconds, 0, chunks_total)),
        set={"state": RUNNING, "started_ms": now_ms()},
    )


def plan_change(pieces: list[tuple[float, float]]) -> Change:
    """Record the chunk plan ([offset, duration] each) of a queued job, once."""
    return Change(
        allow=(QUEUED,),
        unplanned=True,
        plan=pieces,
        set={"chunks_total": len(pieces), "planned": 1, "planned_ms": now_ms()},
    )


def overflowed_change(duration: float, queue: str, budget_seconds: float = 0.0) -> Change:
    """A direct job no direct transcriber could take after all (or whose wait for a slot ran
    out) goes to `queue` as one chunk, planned at once; `budget_seconds` is its processing
    budget as a queued job (0: keep the one it has)."""
    budget: dict[str, str | int | float] = {"budget_s": budget_seconds} if budget_seconds else {}
    return Change(
        allow=(RUNNING, QUEUED),
        set={
            **budget,
            "state": QUEUED,
            "routing": QUEUED_ROUTE,
            "queue": queue,
            "planned": 1,
            "planned_ms": now_ms(),
            "chunks_total": 1,
        },
        plan=[(0.0, duration)],
    )


def claim_planning_change(owner: str) -> Change:
    """Make `owner` (a scheduler instance) the one planning a job not yet planned."""
    return Change(allow=(QUEUED,), unplanned=True, set={"owner": owner})


def chunk_progress_change(index: int, done_seconds: float) -> Change:
    """A chunk has `done_seconds` of its audio transcribed (the job's progress follows)."""
    return Change(allow=(RUNNING,), chunk={"index": index, "done": done_seconds, "ms": now_ms()})


def chunk_finished_change(index: int, transcript: transcription_pb2.Transcript) -> Change:
    """A chunk's transcript (already on the whole file's clock) is in; once per chunk."""
    return Change(
        allow=(RUNNING,),
        chunk={"index": index, "done": 0.0, "finished": True, "ms": now_ms()},
        chunk_binary={f"t:{index}": transcript.SerializeToString()},
    )


def segment_change(job_id: str, segment: transcription_pb2.Segment, piece: int = 0) -> Change:
    return Change(
        allow=(RUNNING,),
        event=event(job_id, segment=segment),
        watermark=(f"wm:{piece}", segment.start_seconds, segment.end_seconds),
    )


def transcriber_change(
    job_id: str, response: transcriber_pb2.TranscribeStreamResponse, total_seconds: float
) -> Change:
    """The job change for one message streamed by a transcriber."""
    kind = response.WhichOneof("event")
    if kind == "progress":
        done = response.progress.audio_seconds_done
        return progress_change(
            job_id, progress_message(done, total_seconds, int(done >= total_seconds))
        )
    if kind == "segment":
        return segment_change(job_id, response.segment)
    return completed_change(job_id, response.transcript)


def completed_change(
    job_id: str, transcript: transcription_pb2.Transcript, allow: tuple[str, ...] = ACTIVE
) -> Change:
    return Change(
        allow=allow,
        event=event(job_id, completed=event_pb2.JobCompleted(transcript=transcript)),
        set={
            "state": SUCCEEDED,
            "ended_ms": now_ms(),
            "fraction": 1.0,
            "done_s": transcript.audio_duration_seconds,
        },
        binary={"transcript": transcript.SerializeToString()},
    )


def failed_change(job_id: str, code: int, message: str) -> Change:
    error = job_pb2.JobError(code=code, message=message)
    return Change(
        allow=ACTIVE,
        event=event(job_id, failed=event_pb2.JobFailed(error=error)),
        set={"state": FAILED, "ended_ms": now_ms()},
        binary={"error": error.SerializeToString()},
    )


def cancelled_change(job_id: str, reason: str) -> Change:
    return Change(
        allow=ACTIVE,
        event=event(job_id, cancelled=event_pb2.JobCancelled(reason=reason)),
        set={"state": CANCELLED, "ended_ms": now_ms()},
    )
