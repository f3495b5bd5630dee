"""The job JSON made from the gateway's protobuf messages: every state, routing, preset, task,
flag, result and event kind, times as RFC 3339, empty optional text as null."""

from __future__ import annotations

import json

import pytest
from google.protobuf import timestamp_pb2

from sayit.common.v1 import event_pb2, job_pb2
from sayit.common.v1 import transcription_pb2 as tpb
from services.http_edge import schemas

JOB_ID = "0123456789abcdef0123456789abcdef"
NAME = f"jobs/{JOB_ID}"


def stamp(seconds: int, nanos: int = 0) -> timestamp_pb2.Timestamp:
    return timestamp_pb2.Timestamp(seconds=seconds, nanos=nanos)


SEGMENT = tpb.Segment(
    id=3,
    start_seconds=1.25,
    end_seconds=2.5,
    text=" 안녕하세요",
    avg_logprob=-0.2,
    no_speech_prob=0.01,
    compression_ratio=1.4,
    temperature=0.2,
    words=[tpb.Word(start_seconds=1.25, end_seconds=2.5, word=" 안녕하세요", probability=0.9)],
    flags=[tpb.SEGMENT_FLAG_LOW_AVG_LOGPROB, tpb.SEGMENT_FLAG_SUSPECTED_HALLUCINATION],
)
TRANSCRIPT = tpb.Transcript(
    text="안녕하세요",
    language_code="ko",
    language_probability=0.97,
    audio_duration_seconds=45.5,
    segments=[SEGMENT],
    model="base",
    processing_seconds=3.5,
    from_cache=True,
    preset=tpb.PRESET_FAST,
)


def test_segment_words_and_floats_without_float32_noise() -> None:
    segment = schemas.segment(SEGMENT)
    assert segment.model_dump() == {
        "id": 3,
        "start": 1.25,
        "end": 2.5,
        "text": " 안녕하세요",
        "avg_logprob": -0.2,
        "no_speech_prob": 0.01,
        "compression_ratio": 1.4,
        "temperature": 0.2,
        "words": [{"word": " 안녕하세요", "start": 1.25, "end": 2.5, "probability": 0.9}],
        "flags": ["low_avg_logprob", "suspected_hallucination"],
    }


@pytest.mark.parametrize(
    ("flag", "name"),
    [
        (tpb.SEGMENT_FLAG_HIGH_NO_SPEECH_PROB, "high_no_speech_prob"),
        (tpb.SEGMENT_FLAG_LOW_AVG_LOGPROB, "low_avg_logprob"),
        (tpb.SEGMENT_FLAG_HIGH_COMPRESSION_RATIO, "high_compression_ratio"),
        (tpb.SEGMENT_FLAG_REPETITION, "repetition"),
        (tpb.SEGMENT_FLAG_SUSPECTED_HALLUCINATION, "suspected_hallucination"),
    ],
)
def test_every_segment_flag(flag: int, name: str) -> None:
    message = tpb.Segment(flags=[tpb.SEGMENT_FLAG_UNSPECIFIED, flag])
    assert schemas.segment(message).flags == [name]


def test_transcript() -> None:
    transcript = schemas.transcript(TRANSCRIPT)
    assert transcript.text == "안녕하세요"
    assert transcript.language == "ko"
    assert transcript.language_probability == 0.97
    assert transcript.duration == 45.5
    assert (transcript.model, transcript.processing_seconds) == ("base", 3.5)
    assert transcript.from_cache is True
    assert transcript.preset == "fast"
    assert [s.id for s in transcript.segments] == [3]
    assert schemas.transcript(tpb.Transcript()).preset is None


@pytest.mark.parametrize(
    ("state", "name"),
    [
        (job_pb2.JOB_STATE_QUEUED, "queued"),
        (job_pb2.JOB_STATE_RUNNING, "running"),
        (job_pb2.JOB_STATE_SUCCEEDED, "succeeded"),
        (job_pb2.JOB_STATE_FAILED, "failed"),
        (job_pb2.JOB_STATE_CANCELLED, "cancelled"),
    ],
)
def test_every_state(state: int, name: str) -> None:
    assert schemas.job(job_pb2.TranscriptionJob(name=NAME, state=state)).state == name


def test_unspecified_state_is_refused() -> None:
    with pytest.raises(ValueError, match="no HTTP name"):
        schemas.job(job_pb2.TranscriptionJob(name=NAME))


@pytest.mark.parametrize(
    ("routing", "name"),
    [
        (job_pb2.ROUTING_DIRECT, "direct"),
        (job_pb2.ROUTING_QUEUED, "queued"),
        (job_pb2.ROUTING_UNSPECIFIED, None),
    ],
)
def test_every_routing(routing: int, name: str | None) -> None:
    message = job_pb2.TranscriptionJob(name=NAME, state=job_pb2.JOB_STATE_QUEUED, routing=routing)
    assert schemas.job(message).routing == name


def test_running_job_json() -> None:
    message = job_pb2.TranscriptionJob(
        name=NAME,
        state=job_pb2.JOB_STATE_RUNNING,
        routing=job_pb2.ROUTING_QUEUED,
        progress=job_pb2.JobProgress(
            fraction=0.5,
            audio_seconds_done=22.0,
            audio_seconds_total=44.0,
            chunks_done=1,
            chunks_total=2,
        ),
        create_time=stamp(1_700_000_000, 250_000_000),
        start_time=stamp(1_700_000_001),
        config=tpb.TranscriptionConfig(
            language_code="ko",
            preset=tpb.PRESET_ACCURATE,
            model="base",
            task=tpb.TASK_TRANSCRIBE,
            word_timestamps=True,
            vad_filter=False,
            initial_prompt="회의록",
            hotwords="SayIt",
        ),
        audio_duration_seconds=44.0,
        filename="meeting.wav",
    )
    assert json.loads(schemas.job(message).model_dump_json()) == {
        "id": JOB_ID,
        "name": NAME,
        "object": "job",
        "state": "running",
        "routing": "queued",
        "progress": {
            "fraction": 0.5,
            "audio_seconds_done": 22.0,
            "audio_seconds_total": 44.0,
            "chunks_done": 1,
            "chunks_total": 2,
        },
        "created_at": "2023-11-14T22:13:20.250000Z",
        "started_at": "2023-11-14T22:13:21Z",
        "ended_at": None,
        "config": {
            "language": "ko",
            "preset": "accurate",
            "task": "transcribe",
            "word_timestamps": True,
            "vad_filter": False,
            "prompt": "회의록",
            "hotwords": "SayIt",
        },
        "audio_duration_seconds": 44.0,
        "filename": "meeting.wav",
        "transcript": None,
        "error": None,
    }


def test_empty_config_and_filename_are_null() -> None:
    converted = schemas.job(job_pb2.TranscriptionJob(name=NAME, state=job_pb2.JOB_STATE_QUEUED))
    assert converted.config.model_dump() == {
        "language": None,
        "preset": None,
        "task": None,
        "word_timestamps": False,
        "vad_filter": None,
        "prompt": None,
        "hotwords": None,
    }
    assert converted.filename is None
    assert (converted.created_at, converted.started_at, converted.ended_at) == (None, None, None)
    assert converted.progress.fraction == 0.0


def test_translate_task_and_vad_on() -> None:
    config = schemas.config(tpb.TranscriptionConfig(task=tpb.TASK_TRANSLATE, vad_filter=True))
    assert (config.task, config.vad_filter) == ("translate", True)


def test_result_oneof() -> None:
    succeeded = schemas.job(
        job_pb2.TranscriptionJob(
            name=NAME,
            state=job_pb2.JOB_STATE_SUCCEEDED,
            end_time=stamp(1_700_000_010),
            transcript=TRANSCRIPT,
        )
    )
    assert succeeded.transcript is not None and succeeded.transcript.text == "안녕하세요"
    assert succeeded.error is None
    assert succeeded.ended_at is not None and succeeded.ended_at.isoformat().endswith("+00:00")
    failed = schemas.job(
        job_pb2.TranscriptionJob(
            name=NAME,
            state=job_pb2.JOB_STATE_FAILED,
            error=job_pb2.JobError(code=3, message="the audio could not be decoded"),
        )
    )
    assert failed.transcript is None
    assert failed.error is not None
    assert failed.error.model_dump() == {
        "code": "invalid_argument",
        "message": "the audio could not be decoded",
    }


@pytest.mark.parametrize(
    ("code", "name"),
    [(3, "invalid_argument"), (14, "unavailable"), (4, "deadline_exceeded"), (99, "unknown")],
)
def test_error_codes(code: int, name: str) -> None:
    assert schemas.code_name(code) == name


def test_job_list_token() -> None:
    queued = job_pb2.TranscriptionJob(name=NAME, state=job_pb2.JOB_STATE_QUEUED)
    page = schemas.job_list([queued], "tok")
    assert page.model_dump(mode="json")["object"] == "list"
    assert [j.id for j in page.data] == [JOB_ID]
    assert page.next_page_token == "tok"
    assert schemas.job_list([], "").next_page_token is None


def event(sequence: int, **kind: object) -> event_pb2.JobEvent:
    return event_pb2.JobEvent(
        name=NAME, job_id=JOB_ID, sequence=sequence, time=stamp(1_700_000_000), **kind
    )


EVENTS = [
    (
        event(
            1,
            accepted=event_pb2.JobAccepted(
                routing=job_pb2.ROUTING_QUEUED, audio_duration_seconds=45.0
            ),
        ),
        "accepted",
        {"routing": "queued", "audio_duration_seconds": 45.0},
    ),
    (
        event(2, progress=job_pb2.JobProgress(fraction=0.25, chunks_done=1, chunks_total=4)),
        "progress",
        {
            "fraction": 0.25,
            "audio_seconds_done": 0.0,
            "audio_seconds_total": 0.0,
            "chunks_done": 1,
            "chunks_total": 4,
        },
    ),
    (event(3, segment=SEGMENT), "segment", schemas.segment(SEGMENT).model_dump(mode="json")),
    (
        event(4, completed=event_pb2.JobCompleted(transcript=TRANSCRIPT)),
        "completed",
        {"transcript": schemas.transcript(TRANSCRIPT).model_dump(mode="json")},
    ),
    (
        event(5, failed=event_pb2.JobFailed(error=job_pb2.JobError(code=14, message="down"))),
        "failed",
        {"error": {"code": "unavailable", "message": "down"}},
    ),
    (
        event(6, cancelled=event_pb2.JobCancelled(reason="cancelled by the caller")),
        "cancelled",
        {"reason": "cancelled by the caller"},
    ),
]


@pytest.mark.parametrize(("message", "kind", "payload"), EVENTS, ids=[e[1] for e in EVENTS])
def test_every_event_kind(message: event_pb2.JobEvent, kind: str, payload: object) -> None:
    converted = schemas.event(message)
    assert converted.type == kind
    assert converted.to_json() == {
        "job_id": JOB_ID,
        "name": NAME,
        "sequence": message.sequence,
        "time": "2023-11-14T22:13:20Z",
        "type": kind,
        kind: payload,
    }


def test_event_name_from_job_id_and_no_kind() -> None:
    old = event_pb2.JobEvent(job_id=JOB_ID, sequence=1, cancelled=event_pb2.JobCancelled())
    assert schemas.event(old).name == NAME
    with pytest.raises(ValueError, match="no kind"):
        schemas.event(event_pb2.JobEvent(name=NAME, sequence=7))
