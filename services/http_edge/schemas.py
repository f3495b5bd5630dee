"""The job JSON of the HTTP API (pydantic models, so the OpenAPI document describes it) and its
conversion from the gateway's protobuf messages (sayit.common.v1).

Enums become lowercase words without their prefix (JOB_STATE_RUNNING -> "running"), times RFC
3339 strings (null when unset), durations seconds; an empty optional text is null.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Literal

import grpc
from google.protobuf import timestamp_pb2
from pydantic import BaseModel, Field

from sayit.common.v1 import event_pb2, job_pb2
from sayit.common.v1 import transcription_pb2 as tpb
from services.common.names import JOB_NAME_PREFIX

JobStateName = Literal["queued", "running", "succeeded", "failed", "cancelled"]
RoutingName = Literal["direct", "queued"]
PresetName = Literal["accurate", "fast"]
TaskName = Literal["transcribe", "translate"]
FlagName = Literal[
    "high_no_speech_prob",
    "low_avg_logprob",
    "high_compression_ratio",
    "repetition",
    "suspected_hallucination",
]
EventType = Literal["accepted", "progress", "segment", "completed", "failed", "cancelled"]
TERMINAL_EVENTS: frozenset[str] = frozenset({"completed", "failed", "cancelled"})

_STATES: dict[int, JobStateName] = {
    job_pb2.JOB_STATE_QUEUED: "queued",
    job_pb2.JOB_STATE_RUNNING: "running",
    job_pb2.JOB_STATE_SUCCEEDED: "succeeded",
    job_pb2.JOB_STATE_FAILED: "failed",
    job_pb2.JOB_STATE_CANCELLED: "cancelled",
}
_ROUTINGS: dict[int, RoutingName] = {
    job_pb2.ROUTING_DIRECT: "direct",
    job_pb2.ROUTING_QUEUED: "queued",
}
_PRESETS: dict[int, PresetName] = {tpb.PRESET_ACCURATE: "accurate", tpb.PRESET_FAST: "fast"}
_TASKS: dict[int, TaskName] = {tpb.TASK_TRANSCRIBE: "transcribe", tpb.TASK_TRANSLATE: "translate"}
_FLAGS: dict[int, FlagName] = {
    tpb.SEGMENT_FLAG_HIGH_NO_SPEECH_PROB: "high_no_speech_prob",
    tpb.SEGMENT_FLAG_LOW_AVG_LOGPROB: "low_avg_logprob",
    tpb.SEGMENT_FLAG_HIGH_COMPRESSION_RATIO: "high_compression_ratio",
    tpb.SEGMENT_FLAG_REPETITION: "repetition",
    tpb.SEGMENT_FLAG_SUSPECTED_HALLUCINATION: "suspected_hallucination",
}
# google.rpc.Code number -> "invalid_argument", ...
_CODES: dict[int, str] = {code.value[0]: code.name.lower() for code in grpc.StatusCode}


class Word(BaseModel):
    word: str
    start: float = Field(description="seconds from the start of the audio")
    end: float
    probability: float


class Segment(BaseModel):
    id: int
    start: float = Field(description="seconds from the start of the audio")
    end: float
    text: str
    avg_logprob: float
    no_speech_prob: float
    compression_ratio: float
    temperature: float = Field(description="the temperature the text was finally decoded at")
    words: list[Word] = Field(description="empty unless word_timestamps was asked for")
    flags: list[FlagName] = Field(description="why the segment's text may not be trustworthy")


class Transcript(BaseModel):
    text: str = Field(description="empty in a list with view=basic")
    language: str = Field(description="the spoken language, given or detected")
    language_probability: float
    duration: float = Field(description="the audio's duration in seconds")
    model: str
    processing_seconds: float
    from_cache: bool
    preset: PresetName | None
    segments: list[Segment] = Field(description="empty in a list with view=basic")


class JobError(BaseModel):
    code: str = Field(description="a gRPC status code name in lowercase (invalid_argument, ...)")
    message: str


class Progress(BaseModel):
    fraction: float = Field(description="0..1; never goes backwards")
    audio_seconds_done: float
    audio_seconds_total: float
    chunks_done: int
    chunks_total: int


class JobConfig(BaseModel):
    language: str | None = Field(description="null: detected")
    preset: PresetName | None
    task: TaskName | None
    word_timestamps: bool
    vad_filter: bool | None
    prompt: str | None
    hotwords: str | None


class Job(BaseModel):
    id: str
    name: str = Field(description='"jobs/{id}", the job\'s name in the gRPC API')
    object: Literal["job"] = "job"
    state: JobStateName
    routing: RoutingName | None
    progress: Progress
    created_at: datetime | None
    started_at: datetime | None
    ended_at: datetime | None
    config: JobConfig
    audio_duration_seconds: float
    filename: str | None
    transcript: Transcript | None = Field(description="set once the job has succeeded")
    error: JobError | None = Field(description="set when the job has failed")


class JobList(BaseModel):
    object: Literal["list"] = "list"
    data: list[Job] = Field(description="newest first")
    next_page_token: str | None = Field(description="null on the last page")


class Accepted(BaseModel):
    routing: RoutingName | None
    audio_duration_seconds: float


class Completed(BaseModel):
    transcript: Transcript


class Failed(BaseModel):
    error: JobError


class Cancelled(BaseModel):
    reason: str


class JobEvent(BaseModel):
    """One event of a job; besides the common fields it has one field named after its `type`.
    In the event stream it is an event's `data`, with `id: <sequence>` and `event: <type>`."""

    job_id: str
    name: str
    sequence: int = Field(description="strictly increasing per job, from 1")
    time: datetime | None
    type: EventType
    accepted: Accepted | None = None
    progress: Progress | None = None
    segment: Segment | None = None
    completed: Completed | None = None
    failed: Failed | None = None
    cancelled: Cancelled | None = None

    def to_json(self) -> dict[str, Any]:
        """The event's JSON: the common fields and only its type's payload."""
        others = {kind for kind in EventType.__args__ if kind != self.type}  # type: ignore[attr-defined]
        return self.model_dump(mode="json", exclude=others)


# --- protobuf -> models ---------------------------------------------------------------------


def _f32(value: float) -> float:
    """A protobuf float (32 bits) without the noise digits of its double form."""
    return float(f"{value:.7g}")


def _time(message: Any, field: str) -> datetime | None:
    if not message.HasField(field):
        return None
    stamp: timestamp_pb2.Timestamp = getattr(message, field)
    return stamp.ToDatetime(tzinfo=UTC)


def job_id_of(name: str) -> str:
    return name.removeprefix(JOB_NAME_PREFIX)


def state_name(state: int) -> JobStateName:
    try:
        return _STATES[state]
    except KeyError:
        raise ValueError(f"job state {state} has no HTTP name") from None


def routing_name(routing: int) -> RoutingName | None:
    return _ROUTINGS.get(routing)


def code_name(code: int) -> str:
    return _CODES.get(code, "unknown")


def word(message: tpb.Word) -> Word:
    return Word(
        word=message.word,
        start=message.start_seconds,
        end=message.end_seconds,
        probability=_f32(message.probability),
    )


def segment(message: tpb.Segment) -> Segment:
    return Segment(
        id=message.id,
        start=message.start_seconds,
        end=message.end_seconds,
        text=message.text,
        avg_logprob=_f32(message.avg_logprob),
        no_speech_prob=_f32(message.no_speech_prob),
        compression_ratio=_f32(message.compression_ratio),
        temperature=_f32(message.temperature),
        words=[word(w) for w in message.words],
        flags=[_FLAGS[f] for f in message.flags if f in _FLAGS],
    )


def transcript(message: tpb.Transcript) -> Transcript:
    return Transcript(
        text=message.text,
        language=message.language_code,
        language_probability=_f32(message.language_probability),
        duration=message.audio_duration_seconds,
        model=message.model,
        processing_seconds=message.processing_seconds,
        from_cache=message.from_cache,
        preset=_PRESETS.get(message.preset),
        segments=[segment(s) for s in message.segments],
    )


def job_error(message: job_pb2.JobError) -> JobError:
    return JobError(code=code_name(message.code), message=message.message)


def progress(message: job_pb2.JobProgress) -> Progress:
    return Progress(
        fraction=_f32(message.fraction),
        audio_seconds_done=message.audio_seconds_done,
        audio_seconds_total=message.audio_seconds_total,
        chunks_done=message.chunks_done,
        chunks_total=message.chunks_total,
    )


def config(message: tpb.TranscriptionConfig) -> JobConfig:
    return JobConfig(
        language=message.language_code or None,
        preset=_PRESETS.get(message.preset),
        task=_TASKS.get(message.task),
        word_timestamps=message.word_timestamps,
        vad_filter=message.vad_filter if message.HasField("vad_filter") else None,
        prompt=message.initial_prompt or None,
        hotwords=message.hotwords or None,
    )


def job(message: job_pb2.TranscriptionJob) -> Job:
    result = message.WhichOneof("result")
    return Job(
        id=job_id_of(message.name),
        name=message.name,
        state=state_name(message.state),
        routing=routing_name(message.routing),
        progress=progress(message.progress),
        created_at=_time(message, "create_time"),
        started_at=_time(message, "start_time"),
        ended_at=_time(message, "end_time"),
        config=config(message.config),
        audio_duration_seconds=message.audio_duration_seconds,
        filename=message.filename or None,
        transcript=transcript(message.transcript) if result == "transcript" else None,
        error=job_error(message.error) if result == "error" else None,
    )


def job_list(jobs: list[job_pb2.TranscriptionJob], next_page_token: str) -> JobList:
    return JobList(data=[job(j) for j in jobs], next_page_token=next_page_token or None)


def event(message: event_pb2.JobEvent) -> JobEvent:
    """The event as JSON; ValueError for an event without a kind (none is ever sent)."""
    kind = message.WhichOneof("kind")
    common: dict[str, Any] = {
        "job_id": message.job_id or job_id_of(message.name),
        "name": message.name or f"{JOB_NAME_PREFIX}{message.job_id}",
        "sequence": message.sequence,
        "time": _time(message, "time"),
    }
    if kind == "accepted":
        payload: BaseModel = Accepted(
            routing=routing_name(message.accepted.routing),
            audio_duration_seconds=message.accepted.audio_duration_seconds,
        )
    elif kind == "progress":
        payload = progress(message.progress)
    elif kind == "segment":
        payload = segment(message.segment)
    elif kind == "completed":
        payload = Completed(transcript=transcript(message.completed.transcript))
    elif kind == "failed":
        payload = Failed(error=job_error(message.failed.error))
    elif kind == "cancelled":
        payload = Cancelled(reason=message.cancelled.reason)
    else:
        raise ValueError(f"job event {message.sequence} of {message.name} has no kind")
    return JobEvent.model_validate({**common, "type": kind, kind: payload})
