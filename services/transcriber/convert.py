"""Protobuf <-> engine types for the transcriber: the engine request for a config, and result
messages."""

from __future__ import annotations

from collections.abc import Iterable

from sayit.common.v1 import transcription_pb2 as tpb
from services.common.effective_config import effective_config
from services.common.errors import InvalidArgument
from services.transcriber import guards, presets
from services.transcriber.engine import Analysis, DecodedSegment, EngineRequest

_PRESETS: dict[int, str] = {
    tpb.PRESET_UNSPECIFIED: presets.ACCURATE,
    tpb.PRESET_ACCURATE: presets.ACCURATE,
    tpb.PRESET_FAST: presets.FAST,
}
PRESET_ENUMS = {presets.ACCURATE: tpb.PRESET_ACCURATE, presets.FAST: tpb.PRESET_FAST}
_TASKS: dict[int, str] = {
    tpb.TASK_UNSPECIFIED: "transcribe",
    tpb.TASK_TRANSCRIBE: "transcribe",
    tpb.TASK_TRANSLATE: "translate",
}
_FLAGS = {
    guards.HIGH_NO_SPEECH_PROB: tpb.SEGMENT_FLAG_HIGH_NO_SPEECH_PROB,
    guards.LOW_AVG_LOGPROB: tpb.SEGMENT_FLAG_LOW_AVG_LOGPROB,
    guards.HIGH_COMPRESSION_RATIO: tpb.SEGMENT_FLAG_HIGH_COMPRESSION_RATIO,
    guards.REPETITION: tpb.SEGMENT_FLAG_REPETITION,
    guards.SUSPECTED_HALLUCINATION: tpb.SEGMENT_FLAG_SUSPECTED_HALLUCINATION,
}


def preset_name(preset: int) -> str:
    try:
        return _PRESETS[preset]
    except KeyError:
        raise InvalidArgument(
            f"unknown preset {preset}; use PRESET_ACCURATE or PRESET_FAST", field="config.preset"
        ) from None


def engine_request(
    config: tpb.TranscriptionConfig, *, served_model: str
) -> tuple[EngineRequest, str]:
    """The engine request for a TranscriptionConfig (effective, from the scheduler, or raw, from a
    direct caller), and the preset name; InvalidArgument if any field is out of range."""
    effective = effective_config(config, served_model)
    language = effective.language_code
    name = preset_name(effective.preset)
    request = EngineRequest(
        language=language,
        task=_TASKS[effective.task],
        preset=presets.lookup(language, name),
        word_timestamps=effective.word_timestamps,
        vad_filter=effective.vad_filter,
        initial_prompt=effective.initial_prompt or None,
        hotwords=effective.hotwords or None,
    )
    return request, name


def segment_message(segment: DecodedSegment, flags: list[str]) -> tpb.Segment:
    return tpb.Segment(
        id=segment.id,
        start_seconds=segment.start,
        end_seconds=segment.end,
        text=segment.text,
        avg_logprob=segment.avg_logprob,
        no_speech_prob=segment.no_speech_prob,
        compression_ratio=segment.compression_ratio,
        temperature=segment.temperature,
        words=[
            tpb.Word(
                start_seconds=w.start, end_seconds=w.end, word=w.word, probability=w.probability
            )
            for w in segment.words
        ],
        flags=[_FLAGS[f] for f in flags],
    )


def transcript_message(
    analysis: Analysis,
    segments: list[tpb.Segment],
    *,
    model: str,
    preset: str,
    processing_seconds: float,
) -> tpb.Transcript:
    return tpb.Transcript(
        text=join_text(s.text for s in segments),
        language_code=analysis.language,
        language_probability=analysis.language_probability,
        audio_duration_seconds=analysis.duration,
        segments=segments,
        model=model,
        processing_seconds=processing_seconds,
        preset=PRESET_ENUMS[preset],
    )


def join_text(texts: Iterable[str]) -> str:
    return " ".join(t.strip() for t in texts if t.strip())
