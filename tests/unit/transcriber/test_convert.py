"""services.transcriber.convert: TranscriptionConfig validation and result messages."""

from __future__ import annotations

from typing import Any

import pytest

from sayit.common.v1 import transcription_pb2 as tpb
from services.common.effective_config import (
    MAX_HOTWORDS_CHARS,
    MAX_PROMPT_CHARS,
    normalize_language,
)
from services.common.errors import InvalidArgument
from services.common.languages import LANGUAGES
from services.transcriber import guards, presets
from services.transcriber.convert import (
    engine_request,
    join_text,
    preset_name,
    segment_message,
    transcript_message,
)
from services.transcriber.engine import (
    Analysis,
    DecodedSegment,
    DecodedWord,
    EngineRequest,
)

SERVED = "base"


def request(**fields: Any) -> tuple[EngineRequest, str]:
    return engine_request(tpb.TranscriptionConfig(**fields), served_model=SERVED)


def invalid(**fields: Any) -> InvalidArgument:
    with pytest.raises(InvalidArgument) as raised:
        request(**fields)
    return raised.value


# --- normalize_language --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        ("ko", "ko"),
        ("KO", "ko"),
        ("ko-KR", "ko"),
        ("ko_kr", "ko"),
        ("en_US", "en"),
        ("EN-gb", "en"),
        (" en ", "en"),
        ("zh-Hant-TW", "zh"),
        ("ja", "ja"),
        ("auto", ""),
        ("AUTO", ""),
        ("", ""),
        ("   ", ""),
    ],
)
def test_normalize_language(code: str, expected: str) -> None:
    assert normalize_language(code) == expected


@pytest.mark.parametrize("code", ["xx", "korean", "xx-KR", "-ko", "k"])
def test_normalize_language_unknown(code: str) -> None:
    with pytest.raises(InvalidArgument) as raised:
        normalize_language(code)
    error = raised.value
    expected = (
        f"unknown language code {code!r}: use a Whisper language code such as 'ko' or 'en', "
        "or leave it empty to detect the language"
    )
    assert error.message == expected
    assert len(error.violations) == 1
    assert error.violations[0].field == "config.language_code"
    assert error.violations[0].description == expected


def test_preset_name() -> None:
    assert preset_name(tpb.PRESET_UNSPECIFIED) == "accurate"
    assert preset_name(tpb.PRESET_ACCURATE) == "accurate"
    assert preset_name(tpb.PRESET_FAST) == "fast"


# --- engine_request ------------------------------------------------------------------------------


def test_engine_request_defaults() -> None:
    engine, name = request()
    assert name == "accurate"
    assert engine.language == ""
    assert engine.task == "transcribe"
    assert engine.preset is presets.PRESETS[("auto", "accurate")]
    assert engine.word_timestamps is False
    assert engine.vad_filter is True
    assert engine.initial_prompt is None
    assert engine.hotwords is None


@pytest.mark.parametrize(
    ("preset", "expected"),
    [
        (tpb.PRESET_UNSPECIFIED, "accurate"),
        (tpb.PRESET_ACCURATE, "accurate"),
        (tpb.PRESET_FAST, "fast"),
    ],
)
@pytest.mark.parametrize("language", ["ko", "en"])
def test_engine_request_preset_rows(language: str, preset: int, expected: str) -> None:
    engine, name = request(language_code=language.upper() + "-XX", preset=preset)
    assert name == expected
    assert engine.language == language
    assert engine.preset is presets.PRESETS[(language, expected)]


def test_engine_request_other_language_uses_auto_row_with_language_forced() -> None:
    engine, name = request(language_code="ja", preset=tpb.PRESET_FAST)
    assert (engine.language, name) == ("ja", "fast")
    assert engine.preset is presets.PRESETS[("auto", "fast")]


@pytest.mark.parametrize(
    ("task", "expected"),
    [
        (tpb.TASK_UNSPECIFIED, "transcribe"),
        (tpb.TASK_TRANSCRIBE, "transcribe"),
        (tpb.TASK_TRANSLATE, "translate"),
    ],
)
def test_engine_request_task(task: int, expected: str) -> None:
    assert request(task=task)[0].task == expected


def test_engine_request_vad_filter_optional_field() -> None:
    assert request()[0].vad_filter is True
    assert request(vad_filter=True)[0].vad_filter is True
    config = tpb.TranscriptionConfig(vad_filter=False)
    assert config.HasField("vad_filter")  # explicitly off, not "unset"
    engine, _ = engine_request(config, served_model=SERVED)
    assert engine.vad_filter is False


def test_engine_request_passes_fields() -> None:
    engine, _ = request(
        language_code="ko",
        word_timestamps=True,
        initial_prompt="회의록: 김철수, 이영희",
        hotwords="SayIt, gRPC",
        model=SERVED,
    )
    assert engine.word_timestamps is True
    assert engine.initial_prompt == "회의록: 김철수, 이영희"
    assert engine.hotwords == "SayIt, gRPC"


def test_engine_request_model_mismatch() -> None:
    error = invalid(model="large-v3")
    assert error.message == (
        "model 'large-v3' is not served here (served: base); "
        "leave config.model empty for the default"
    )
    assert [v.field for v in error.violations] == ["config.model"]


def test_engine_request_unknown_preset_number() -> None:
    error = invalid(preset=7)
    assert error.message == "unknown preset 7; use PRESET_ACCURATE or PRESET_FAST"
    assert [v.field for v in error.violations] == ["config.preset"]


def test_engine_request_unknown_task_number() -> None:
    error = invalid(task=9)
    assert error.message == "unknown task 9; use TASK_TRANSCRIBE or TASK_TRANSLATE"
    assert [v.field for v in error.violations] == ["config.task"]


def test_engine_request_unknown_language() -> None:
    error = invalid(language_code="klingon")
    assert error.message.startswith("unknown language code 'klingon': ")
    assert [v.field for v in error.violations] == ["config.language_code"]


def test_engine_request_validation_order() -> None:
    # Language, then preset, then task, then model, then prompt, then hotwords.
    too_long = "x" * 1001
    everything_bad = {
        "language_code": "xx",
        "preset": 7,
        "task": 9,
        "model": "small",
        "initial_prompt": too_long,
        "hotwords": too_long,
    }
    order = [
        "config.language_code",
        "config.preset",
        "config.task",
        "config.model",
        "config.initial_prompt",
        "config.hotwords",
    ]
    fields = dict(everything_bad)
    seen = []
    for key in ["language_code", "preset", "task", "model", "initial_prompt", "hotwords"]:
        seen.append(invalid(**fields).violations[0].field)
        del fields[key]
    assert seen == order
    assert request(**fields)[1] == "accurate"


def test_limits() -> None:
    assert MAX_PROMPT_CHARS == 1000
    assert MAX_HOTWORDS_CHARS == 1000


@pytest.mark.parametrize("char", ["a", "가"])
def test_initial_prompt_limit(char: str) -> None:
    assert request(initial_prompt=char * 1000)[0].initial_prompt == char * 1000
    error = invalid(initial_prompt=char * 1001)
    assert error.message == "initial_prompt is 1001 characters; the limit is 1000"
    assert [v.field for v in error.violations] == ["config.initial_prompt"]


@pytest.mark.parametrize("char", ["a", "가"])
def test_hotwords_limit(char: str) -> None:
    assert request(hotwords=char * 1000)[0].hotwords == char * 1000
    error = invalid(hotwords=char * 1001)
    assert error.message == "hotwords is 1001 characters; the limit is 1000"
    assert [v.field for v in error.violations] == ["config.hotwords"]


# --- result messages -----------------------------------------------------------------------------


def decoded(text: str = " Hello there.", **overrides: object) -> DecodedSegment:
    fields: dict[str, object] = {
        "id": 3,
        "start": 1.25,
        "end": 4.5,
        "text": text,
        "avg_logprob": -0.25,
        "no_speech_prob": 0.125,
        "compression_ratio": 1.5,
        "temperature": 0.2,
        "words": (),
    }
    fields.update(overrides)
    return DecodedSegment(**fields)  # type: ignore[arg-type]


def test_segment_message_fields() -> None:
    words = (
        DecodedWord(1.25, 2.0, " Hello", 0.875),
        DecodedWord(2.0, 4.5, " there.", 0.5),
    )
    message = segment_message(decoded(words=words), [])
    assert message.id == 3
    assert message.start_seconds == 1.25
    assert message.end_seconds == 4.5
    assert message.text == " Hello there."
    assert message.avg_logprob == -0.25
    assert message.no_speech_prob == 0.125
    assert message.compression_ratio == 1.5
    assert message.temperature == pytest.approx(0.2)
    assert [(w.start_seconds, w.end_seconds, w.word, w.probability) for w in message.words] == [
        (1.25, 2.0, " Hello", 0.875),
        (2.0, 4.5, " there.", 0.5),
    ]
    assert list(message.flags) == []


def test_segment_message_flags_keep_order_and_map_to_enum_values() -> None:
    flags = [
        guards.HIGH_NO_SPEECH_PROB,
        guards.LOW_AVG_LOGPROB,
        guards.HIGH_COMPRESSION_RATIO,
        guards.REPETITION,
        guards.SUSPECTED_HALLUCINATION,
    ]
    message = segment_message(decoded(), flags)
    assert list(message.flags) == [1, 2, 3, 4, 5]
    assert list(message.flags) == [
        tpb.SEGMENT_FLAG_HIGH_NO_SPEECH_PROB,
        tpb.SEGMENT_FLAG_LOW_AVG_LOGPROB,
        tpb.SEGMENT_FLAG_HIGH_COMPRESSION_RATIO,
        tpb.SEGMENT_FLAG_REPETITION,
        tpb.SEGMENT_FLAG_SUSPECTED_HALLUCINATION,
    ]
    reversed_message = segment_message(decoded(), [guards.REPETITION, guards.LOW_AVG_LOGPROB])
    assert list(reversed_message.flags) == [4, 2]


def test_segment_message_unknown_flag() -> None:
    with pytest.raises(KeyError):
        segment_message(decoded(), ["made_up"])


def analysis() -> Analysis:
    return Analysis(language="ko", language_probability=0.75, duration=12.5, duration_after_vad=9.0)


@pytest.mark.parametrize(("preset", "enum"), [("accurate", 1), ("fast", 2)])
def test_transcript_message(preset: str, enum: int) -> None:
    segments = [
        segment_message(decoded(" 안녕하세요. ", id=0), []),
        segment_message(decoded("   ", id=1), [guards.HIGH_NO_SPEECH_PROB]),
        segment_message(decoded("반갑습니다.", id=2), []),
    ]
    transcript = transcript_message(
        analysis(), segments, model="base", preset=preset, processing_seconds=2.5
    )
    assert transcript.text == "안녕하세요. 반갑습니다."
    assert transcript.language_code == "ko"
    assert transcript.language_probability == 0.75
    assert transcript.audio_duration_seconds == 12.5
    assert [s.id for s in transcript.segments] == [0, 1, 2]
    assert list(transcript.segments[1].flags) == [tpb.SEGMENT_FLAG_HIGH_NO_SPEECH_PROB]
    assert transcript.model == "base"
    assert transcript.processing_seconds == 2.5
    assert transcript.preset == enum
    assert transcript.from_cache is False


def test_transcript_message_without_segments() -> None:
    transcript = transcript_message(
        analysis(), [], model="base", preset="accurate", processing_seconds=0.0
    )
    assert transcript.text == ""
    assert list(transcript.segments) == []


@pytest.mark.parametrize(
    ("texts", "expected"),
    [
        ([" Hello", " world."], "Hello world."),
        (["", "  ", "\n"], ""),
        (["one", "", "two ", "  three"], "one two three"),
        (["안녕", "하세요"], "안녕 하세요"),
        ([], ""),
    ],
)
def test_join_text(texts: list[str], expected: str) -> None:
    assert join_text(texts) == expected
    assert join_text(iter(texts)) == expected


def test_language_list_matches_faster_whisper() -> None:
    from faster_whisper.tokenizer import _LANGUAGE_CODES

    assert frozenset(_LANGUAGE_CODES) == LANGUAGES
