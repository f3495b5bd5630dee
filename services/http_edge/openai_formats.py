"""A SayIt Transcript in OpenAI's response shapes (pure functions, no I/O): json, verbose_json,
text, srt, vtt, and the streaming events. The pydantic models describe the JSON shapes in the
OpenAPI document; they mirror the openai SDK's types (openai.types.audio)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field, RootModel

from sayit.common.v1 import transcription_pb2 as tpb
from services.client import formats
from services.http_edge import openai_languages

ResponseFormat = Literal["json", "text", "srt", "verbose_json", "vtt"]
Granularity = Literal["segment", "word"]

# Content type of each non-JSON format.
TEXT_MEDIA_TYPES: dict[str, str] = {"text": "text/plain", "srt": "text/plain", "vtt": "text/vtt"}


class UsageDuration(BaseModel):
    type: Literal["duration"] = "duration"
    seconds: float = Field(description="the input audio's duration")


class TranscriptionJson(BaseModel):
    """response_format=json (OpenAI's Transcription)."""

    text: str
    usage: UsageDuration | None = None


class TranslationJson(BaseModel):
    """response_format=json of a translation (OpenAI's Translation)."""

    text: str


class SegmentJson(BaseModel):
    """OpenAI's TranscriptionSegment. `seek` is the segment's start in 10 ms frames and
    `tokens` is always empty (SayIt does not return token ids)."""

    id: int
    seek: int
    start: float
    end: float
    text: str
    tokens: list[int]
    temperature: float
    avg_logprob: float
    compression_ratio: float
    no_speech_prob: float


class WordJson(BaseModel):
    word: str
    start: float
    end: float


class TranscriptionVerboseJson(BaseModel):
    """response_format=verbose_json (OpenAI's TranscriptionVerbose / TranslationVerbose):
    `language` is the Whisper language name ("korean"), "english" for a translation."""

    task: Literal["transcribe", "translate"]
    language: str
    duration: float
    text: str
    segments: list[SegmentJson] | None = None
    words: list[WordJson] | None = None
    usage: UsageDuration | None = None


class TranscriptionResponse(RootModel[TranscriptionVerboseJson | TranscriptionJson]):
    """json or verbose_json."""


class TranslationResponse(RootModel[TranscriptionVerboseJson | TranslationJson]):
    """json or verbose_json."""


class DeltaSegment(BaseModel):
    """The segment a delta came from; `id` is SayIt's segment id (as in its job events)."""

    id: int
    start: float
    end: float
    text: str


class TextDeltaEvent(BaseModel):
    """stream=true: one per segment as it is decoded (SayIt adds `segment`)."""

    type: Literal["transcript.text.delta"] = "transcript.text.delta"
    delta: str
    segment: DeltaSegment | None = None


class TextDoneEvent(BaseModel):
    """stream=true: the last event."""

    type: Literal["transcript.text.done"] = "transcript.text.done"
    text: str


def _round(seconds: float) -> float:
    return round(seconds, 3)


def usage(transcript: tpb.Transcript) -> dict[str, object]:
    return {"type": "duration", "seconds": _round(transcript.audio_duration_seconds)}


def segment_json(segment: tpb.Segment, index: int) -> dict[str, object]:
    """OpenAI numbers segments from 0 (faster-whisper from 1): `id` is the segment's index."""
    return {
        "id": index,
        "seek": max(0, round(segment.start_seconds * 100)),
        "start": _round(segment.start_seconds),
        "end": _round(segment.end_seconds),
        "text": segment.text,
        "tokens": [],
        "temperature": round(segment.temperature, 4),
        "avg_logprob": round(segment.avg_logprob, 6),
        "compression_ratio": round(segment.compression_ratio, 6),
        "no_speech_prob": round(segment.no_speech_prob, 6),
    }


def words_json(transcript: tpb.Transcript) -> list[dict[str, object]]:
    return [
        {"word": w.word.strip(), "start": _round(w.start_seconds), "end": _round(w.end_seconds)}
        for s in transcript.segments
        for w in s.words
        if w.word.strip()
    ]


def as_json(transcript: tpb.Transcript, *, translation: bool = False) -> dict[str, object]:
    if translation:
        return {"text": transcript.text}
    return {"text": transcript.text, "usage": usage(transcript)}


def as_verbose_json(
    transcript: tpb.Transcript,
    granularities: set[str] | frozenset[str] = frozenset(),
    *,
    translation: bool = False,
) -> dict[str, object]:
    """OpenAI's verbose_json: segments unless only word timestamps were asked for, words when
    they were."""
    data: dict[str, object] = {
        "task": "translate" if translation else "transcribe",
        "language": "english"
        if translation
        else openai_languages.name_of(transcript.language_code),
        "duration": _round(transcript.audio_duration_seconds),
        "text": transcript.text,
    }
    if "segment" in granularities or not granularities or translation:
        data["segments"] = [segment_json(s, i) for i, s in enumerate(transcript.segments)]
    if "word" in granularities and not translation:
        data["words"] = words_json(transcript)
    if not translation:
        data["usage"] = usage(transcript)
    return data


def as_text(transcript: tpb.Transcript, response_format: str) -> str:
    """text, srt or vtt."""
    if response_format == "text":
        text = transcript.text.strip()
        return f"{text}\n" if text else ""
    return formats.render(transcript, response_format)


def delta_event(segment: tpb.Segment, first: bool) -> dict[str, object]:
    """The delta of one segment; the deltas joined are the transcript's text (segments are
    joined with one space, as the transcriber joins them)."""
    text = segment.text.strip()
    return {
        "type": "transcript.text.delta",
        "delta": text if first or not text else f" {text}",
        "segment": {
            "id": segment.id,
            "start": _round(segment.start_seconds),
            "end": _round(segment.end_seconds),
            "text": text,
        },
    }


def done_event(transcript: tpb.Transcript) -> dict[str, object]:
    # No `usage`: OpenAI's done event counts tokens, which SayIt does not report.
    return {"type": "transcript.text.done", "text": transcript.text}


class ModelObject(BaseModel):
    """OpenAI's Model."""

    id: str
    object: Literal["model"] = "model"
    created: int
    owned_by: str


class ModelList(BaseModel):
    object: Literal["list"] = "list"
    data: list[ModelObject]
