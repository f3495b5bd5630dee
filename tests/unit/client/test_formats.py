"""Subtitle, text and JSON writers (services.client.formats), checked with independent parsers
from PyPI: `srt` for SubRip and `webvtt-py` for WebVTT."""

from __future__ import annotations

import html
import itertools
import json
from datetime import timedelta

import pytest
import srt
import webvtt
from hypothesis import given, settings
from hypothesis import strategies as st

from sayit.common.v1 import transcription_pb2 as tpb
from services.client import formats
from services.client.formats import Layout, cues, render, srt_time, vtt_time


def segment(start: float, end: float, text: str, words: list[tuple[str, float, float]] = ()):  # type: ignore[assignment]
    return tpb.Segment(
        start_seconds=start,
        end_seconds=end,
        text=text,
        words=[tpb.Word(word=w, start_seconds=s, end_seconds=e) for w, s, e in words],
    )


JFK = "And so my fellow Americans ask not what your country can do for you ask what you can do"
JFK += " for your country"


def english_with_words() -> tpb.Transcript:
    words = JFK.split()
    timed = [(f" {w}", 0.5 + i * 0.45, 0.5 + i * 0.45 + 0.4) for i, w in enumerate(words)]
    return tpb.Transcript(
        text=" ".join(words),
        language_code="en",
        audio_duration_seconds=11.0,
        segments=[
            segment(0.5, timed[10][2], " ".join(words[:11]), timed[:11]),
            segment(timed[11][1], timed[-1][2], " ".join(words[11:]), timed[11:]),
        ],
    )


def korean_without_words() -> tpb.Transcript:
    first = "맞습니다, 과장님. 사실 모두들 두 분씩 늦게 퇴근하고는 하는데"
    second = "그 시간에 일을 제대로 하는 경우는 없다고 생각합니다."
    return tpb.Transcript(
        text=f"{first} {second}",
        language_code="ko",
        audio_duration_seconds=8.4,
        segments=[segment(0.0, 4.46, first), segment(4.46, 8.0, second)],
    )


def words_of(text: str) -> list[str]:
    return text.split()


@pytest.mark.parametrize("make", [english_with_words, korean_without_words])
def test_srt_parses_and_matches_the_cues(make) -> None:  # type: ignore[no-untyped-def]
    transcript = make()
    expected = cues(transcript)
    parsed = list(srt.parse(render(transcript, "srt")))
    assert len(parsed) == len(expected) >= 2
    for n, (cue, sub) in enumerate(zip(expected, parsed, strict=True), start=1):
        assert sub.index == n
        assert sub.start == timedelta(milliseconds=round(cue.start * 1000))
        assert sub.end == timedelta(milliseconds=round(cue.end * 1000))
        assert sub.content == cue.text
    # Every word, in order, nothing added or lost; cues in order, never overlapping.
    assert words_of(" ".join(s.content for s in parsed)) == words_of(transcript.text)
    assert all(a.end <= b.start for a, b in itertools.pairwise(parsed))
    assert all(s.start < s.end for s in parsed)


@pytest.mark.parametrize("make", [english_with_words, korean_without_words])
def test_vtt_parses_and_matches_the_cues(make) -> None:  # type: ignore[no-untyped-def]
    transcript = make()
    expected = cues(transcript)
    document = render(transcript, "vtt")
    assert document.startswith("WEBVTT\n\n")
    parsed = webvtt.from_string(document).captions
    assert len(parsed) == len(expected)
    for cue, caption in zip(expected, parsed, strict=True):
        assert caption.start == vtt_time(cue.start) and caption.end == vtt_time(cue.end)
        assert caption.start_in_seconds == int(cue.start)
        assert caption.text == cue.text
    assert words_of(" ".join(c.text for c in parsed)) == words_of(transcript.text)


def test_cues_follow_word_timestamps_and_line_limits() -> None:
    transcript = english_with_words()
    result = cues(transcript)
    first_words = transcript.segments[0].words
    assert result[0].start == pytest.approx(first_words[0].start_seconds)
    for cue in result:
        assert 1 <= len(cue.lines) <= formats.MAX_LINES
        assert all(len(line) <= formats.MAX_LINE_CHARS for line in cue.lines)
        assert cue.end - cue.start <= formats.MAX_CUE_SECONDS
    # Each cue ends when its last word ends (word timestamps, not segment times).
    word_ends = {round(w.end_seconds, 3) for s in transcript.segments for w in s.words}
    assert all(round(c.end, 3) in word_ends for c in result)


def test_korean_lines_are_short_and_segments_split_evenly() -> None:
    result = cues(korean_without_words())
    assert all(len(line) <= 16 for cue in result for line in cue.lines)
    # The first segment (31 characters) needs two cues: they share its words evenly instead
    # of leaving a one-word cue at the end.
    first = [c for c in result if c.end <= 4.46 + 1e-6]
    assert len(first) == 2
    sizes = [len(c.text.replace("\n", " ")) for c in first]
    assert max(sizes) - min(sizes) <= 6
    # Without word timestamps the segment's time is shared in proportion to the text.
    assert first[0].start == 0.0 and first[-1].end == pytest.approx(4.46)
    assert 1.5 < first[0].end < 3.0


def test_timestamp_formats() -> None:
    assert srt_time(0) == "00:00:00,000"
    assert srt_time(3723.4567) == "01:02:03,457"
    assert vtt_time(59.9996) == "00:01:00.000"
    assert vtt_time(36000.25) == "10:00:00.250"


def test_vtt_escapes_markup_characters() -> None:
    transcript = tpb.Transcript(language_code="en", segments=[segment(0, 2, "Q&A: 1 < 2 --> fine")])
    document = render(transcript, "vtt")
    assert "Q&amp;A: 1 &lt; 2 --&gt; fine" in document
    # webvtt-py keeps entities as written; a player decodes them.
    caption = webvtt.from_string(document).captions[0]
    assert html.unescape(caption.text) == "Q&A: 1 < 2 --> fine"


def test_text_and_json() -> None:
    transcript = english_with_words()
    assert render(transcript, "txt").splitlines() == [s.text for s in transcript.segments]
    data = json.loads(render(transcript, "json"))
    assert data["text"] == transcript.text and data["language_code"] == "en"
    assert len(data["segments"]) == 2
    assert data["segments"][0]["words"][0]["word"] == " And"
    assert data["from_cache"] is False  # fields at their default are written too
    with pytest.raises(ValueError, match="format must be one of"):
        render(transcript, "docx")


def test_empty_transcript_gives_valid_empty_documents() -> None:
    empty = tpb.Transcript(language_code="en")
    assert render(empty, "srt") == ""
    assert list(srt.parse(render(empty, "srt"))) == []
    assert webvtt.from_string(render(empty, "vtt")).captions == []
    assert render(empty, "txt") == ""


_word = st.text(alphabet="abcdefghij가나다라마바사", min_size=1, max_size=14)


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.lists(_word, min_size=1, max_size=30),
            st.floats(0.1, 12.0),
            st.booleans(),
        ),
        min_size=1,
        max_size=6,
    ),
    st.integers(10, 50),
)
def test_any_transcript_makes_parseable_ordered_subtitles(spec, width) -> None:  # type: ignore[no-untyped-def]
    segments, at = [], 0.0
    for texts, duration, timed in spec:
        step = duration / len(texts)
        words = [(f" {t}", at + i * step, at + (i + 1) * step) for i, t in enumerate(texts)]
        segments.append(segment(at, at + duration, " ".join(texts), words if timed else []))
        at += duration + 0.3
    transcript = tpb.Transcript(
        language_code="en", segments=segments, text=" ".join(s.text for s in segments)
    )
    layout = Layout(max_line_chars=width)
    parsed = list(srt.parse(formats.to_srt(transcript, layout)))
    assert words_of(" ".join(s.content for s in parsed)) == words_of(transcript.text)
    assert all(a.end <= b.start for a, b in itertools.pairwise(parsed))
    for sub in parsed:
        lines = sub.content.split("\n")
        assert len(lines) <= layout.max_lines
        # A line is within the limit unless it is one word longer than the limit.
        assert all(len(line) <= width or " " not in line for line in lines)
    captions = webvtt.from_string(formats.to_vtt(transcript, layout)).captions
    assert [c.text for c in captions] == [s.content for s in parsed]
