"""Chunk transcripts merged into the job's transcript."""

from __future__ import annotations

import pytest

from sayit.common.v1 import transcription_pb2 as tpb
from services.jobs import merge


def chunk(
    texts: list[tuple[float, float, str]],
    language: str = "ko",
    seconds: float = 60.0,
    probability: float = 1.0,
) -> tpb.Transcript:
    return tpb.Transcript(
        text=" ".join(t for _, _, t in texts),
        language_code=language,
        language_probability=probability,
        audio_duration_seconds=seconds,
        model="base",
        preset=tpb.PRESET_ACCURATE,
        segments=[
            tpb.Segment(
                id=i,
                start_seconds=s,
                end_seconds=e,
                text=t,
                words=[tpb.Word(start_seconds=s, end_seconds=e, word=t)],
            )
            for i, (s, e, t) in enumerate(texts)
        ],
    )


def test_shifting_moves_segments_and_words() -> None:
    moved = merge.shifted_transcript(chunk([(1.0, 2.5, "안녕")]), 60.0)
    segment = moved.segments[0]
    assert (segment.start_seconds, segment.end_seconds) == (61.0, 62.5)
    assert (segment.words[0].start_seconds, segment.words[0].end_seconds) == (61.0, 62.5)
    assert moved.audio_duration_seconds == 60.0  # the chunk's own length stays


def test_merge_keeps_order_renumbers_and_joins_text() -> None:
    first = chunk([(0.0, 2.0, " 하나 "), (2.0, 4.0, "둘")])
    second = merge.shifted_transcript(chunk([(0.5, 3.0, "셋")]), 60.0)
    merged = merge.merge([first, second], duration_seconds=120.0, processing_seconds=7.5)
    assert merged.text == "하나 둘 셋"
    assert [s.id for s in merged.segments] == [0, 1, 2]
    assert [s.start_seconds for s in merged.segments] == [0.0, 2.0, 60.5]
    assert merged.audio_duration_seconds == 120.0 and merged.processing_seconds == 7.5
    assert merged.model == "base" and merged.preset == tpb.PRESET_ACCURATE
    assert not merged.from_cache


def test_the_language_spoken_longest_wins() -> None:
    merged = merge.merge(
        [
            chunk([(0, 1, "hello")], "en", seconds=30.0, probability=0.9),
            chunk([(0, 1, "안녕")], "ko", seconds=60.0, probability=0.8),
            chunk([(0, 1, "반가워")], "ko", seconds=60.0, probability=0.6),
        ],
        duration_seconds=150.0,
        processing_seconds=1.0,
    )
    assert merged.language_code == "ko"
    assert merged.language_probability == pytest.approx(0.7)


def test_nothing_to_merge_is_an_error() -> None:
    with pytest.raises(ValueError):
        merge.merge([], 1.0, 1.0)
