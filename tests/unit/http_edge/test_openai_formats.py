"""OpenAI's response shapes of a SayIt transcript, and Whisper's language names."""

from __future__ import annotations

import pytest
from openai.types.audio import (
    Transcription,
    TranscriptionTextDeltaEvent,
    TranscriptionTextDoneEvent,
    TranscriptionVerbose,
    Translation,
    TranslationVerbose,
)

from sayit.common.v1 import transcription_pb2 as tpb
from services.common.languages import LANGUAGES
from services.http_edge import openai_formats, openai_languages


def transcript(language: str = "ko") -> tpb.Transcript:
    segments = [
        tpb.Segment(
            id=0,
            start_seconds=0.0,
            end_seconds=2.5,
            text="맞습니다, 과장님.",
            avg_logprob=-0.2,
            no_speech_prob=0.01,
            compression_ratio=1.1,
            temperature=0.0,
            words=[
                tpb.Word(start_seconds=0.0, end_seconds=1.1, word=" 맞습니다,", probability=0.9),
                tpb.Word(start_seconds=1.2, end_seconds=2.5, word=" 과장님.", probability=0.8),
            ],
        ),
        tpb.Segment(
            id=1,
            start_seconds=2.5,
            end_seconds=6.25,
            text="사실 모두들 늦게 퇴근합니다.",
            avg_logprob=-0.3,
            words=[
                tpb.Word(start_seconds=2.6, end_seconds=3.0, word=" 사실", probability=0.9),
                tpb.Word(start_seconds=3.0, end_seconds=6.2, word=" 모두들 늦게 퇴근합니다."),
            ],
        ),
    ]
    return tpb.Transcript(
        text="맞습니다, 과장님. 사실 모두들 늦게 퇴근합니다.",
        language_code=language,
        audio_duration_seconds=6.5,
        segments=segments,
        model="base",
    )


def test_json_parses_as_the_sdks_transcription() -> None:
    data = openai_formats.as_json(transcript())
    parsed = Transcription.model_validate(data)
    assert parsed.text == "맞습니다, 과장님. 사실 모두들 늦게 퇴근합니다."
    assert parsed.usage is not None and parsed.usage.type == "duration"
    assert parsed.usage.seconds == 6.5
    assert Translation.model_validate(openai_formats.as_json(transcript(), translation=True))


def test_verbose_json_segments_words_and_language_name() -> None:
    data = openai_formats.as_verbose_json(transcript(), {"segment", "word"})
    parsed = TranscriptionVerbose.model_validate(data)
    assert parsed.language == "korean" and parsed.duration == 6.5
    assert [s.start for s in parsed.segments or []] == [0.0, 2.5]
    assert [s.seek for s in parsed.segments or []] == [0, 250]
    assert [w.word for w in parsed.words or []] == [
        "맞습니다,",
        "과장님.",
        "사실",
        "모두들 늦게 퇴근합니다.",
    ]
    assert (parsed.words or [])[-1].end == 6.2
    # OpenAI's default granularity is segment: no words unless asked.
    assert "words" not in openai_formats.as_verbose_json(transcript())
    # Only words asked for: no segments.
    assert "segments" not in openai_formats.as_verbose_json(transcript(), {"word"})
    translated = TranslationVerbose.model_validate(
        openai_formats.as_verbose_json(transcript("ko"), translation=True)
    )
    assert translated.language == "english" and len(translated.segments or []) == 2


def test_text_srt_and_vtt() -> None:
    assert openai_formats.as_text(transcript(), "text") == (
        "맞습니다, 과장님. 사실 모두들 늦게 퇴근합니다.\n"
    )
    srt = openai_formats.as_text(transcript(), "srt")
    assert srt.startswith("1\n00:00:00,000 --> ")
    assert "과장님." in srt and "\n\n2\n" in srt
    vtt = openai_formats.as_text(transcript(), "vtt")
    assert vtt.startswith("WEBVTT\n\n00:00:00.000 --> ")
    assert openai_formats.TEXT_MEDIA_TYPES == {
        "text": "text/plain",
        "srt": "text/plain",
        "vtt": "text/vtt",
    }
    assert openai_formats.as_text(tpb.Transcript(), "text") == ""


def test_stream_deltas_join_into_the_done_text() -> None:
    whole = transcript()
    empty = tpb.Segment(id=2, start_seconds=6.25, end_seconds=6.4, text=" ")
    deltas = []
    said = False
    for segment in [*whole.segments, empty]:
        event = openai_formats.delta_event(segment, first=not said)
        said = said or bool(segment.text.strip())
        deltas.append(TranscriptionTextDeltaEvent.model_validate(event))
        assert event["segment"]["id"] == segment.id  # type: ignore[index]
    done = TranscriptionTextDoneEvent.model_validate(openai_formats.done_event(whole))
    assert "".join(d.delta for d in deltas) == done.text == whole.text
    assert deltas[1].delta.startswith(" ")


def test_language_names_cover_every_whisper_code() -> None:
    assert set(openai_languages.NAMES) == set(LANGUAGES)
    assert len(set(openai_languages.NAMES.values())) == len(LANGUAGES)
    assert openai_languages.name_of("ko") == "korean"
    assert openai_languages.name_of("en") == "english"
    assert openai_languages.name_of("yue") == "cantonese"
    assert openai_languages.name_of("") == ""
    assert openai_languages.code_of("Korean") == "ko"
    assert openai_languages.code_of("ko") == "ko"
    assert openai_languages.code_of("xx") == "xx"  # the gateway refuses it, naming the field


def test_language_codes_match_faster_whisper() -> None:
    tokenizer = pytest.importorskip("faster_whisper.tokenizer")
    assert set(openai_languages.NAMES) == set(tokenizer._LANGUAGE_CODES)
