"""Writing a Transcript as plain text, JSON, SRT or WebVTT (pure functions, no I/O).

Subtitle cues hold at most two lines of at most 42 characters (the common broadcast limit; 16
for Korean and Chinese, 13 for Japanese, whose characters are twice as wide and read slower) and
last at most 7 s; they are split between words, never inside one. With word timestamps each
cue's times are its words' times; without them a segment's time is shared among its words in
proportion to their length.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from google.protobuf import json_format

from sayit.common.v1 import transcription_pb2 as tpb

FORMATS = ("txt", "json", "srt", "vtt")
MAX_LINE_CHARS = 42
MAX_LINES = 2
MAX_CUE_SECONDS = 7.0
# A cue ends at or after this many seconds past its start, so players show it at all.
MIN_CUE_SECONDS = 0.2


@dataclass(frozen=True)
class Cue:
    start: float
    end: float
    lines: tuple[str, ...]

    @property
    def text(self) -> str:
        return "\n".join(self.lines)


@dataclass(frozen=True)
class _Word:
    text: str
    start: float
    end: float


@dataclass(frozen=True)
class Layout:
    max_line_chars: int = MAX_LINE_CHARS
    max_lines: int = MAX_LINES
    max_cue_seconds: float = MAX_CUE_SECONDS


# Characters per line for scripts of full-width characters (as in common subtitle style guides).
_LINE_CHARS_BY_LANGUAGE = {"ko": 16, "zh": 16, "yue": 16, "ja": 13}


def layout_for(language_code: str) -> Layout:
    """The default layout for subtitles in this language."""
    return Layout(max_line_chars=_LINE_CHARS_BY_LANGUAGE.get(language_code, MAX_LINE_CHARS))


def render(transcript: tpb.Transcript, fmt: str, layout: Layout | None = None) -> str:
    """The transcript in `fmt` (one of FORMATS)."""
    if fmt == "txt":
        return to_text(transcript)
    if fmt == "json":
        return to_json(transcript)
    if fmt == "srt":
        return to_srt(transcript, layout)
    if fmt == "vtt":
        return to_vtt(transcript, layout)
    raise ValueError(f"format must be one of {', '.join(FORMATS)}; got {fmt!r}")


def to_text(transcript: tpb.Transcript) -> str:
    """One line per segment (the whole text if there are no segments)."""
    lines = [s.text.strip() for s in transcript.segments if s.text.strip()]
    if not lines and transcript.text.strip():
        lines = [transcript.text.strip()]
    return "".join(f"{line}\n" for line in lines)


def to_json(transcript: tpb.Transcript) -> str:
    """The whole Transcript message (segments, words, flags...) as JSON, snake_case fields."""
    data = json_format.MessageToDict(
        transcript, preserving_proto_field_name=True, always_print_fields_with_no_presence=True
    )
    return json.dumps(data, ensure_ascii=False, indent=2) + "\n"


def to_srt(transcript: tpb.Transcript, layout: Layout | None = None) -> str:
    blocks = [
        f"{n}\n{srt_time(c.start)} --> {srt_time(c.end)}\n{c.text}\n"
        for n, c in enumerate(cues(transcript, layout), start=1)
    ]
    return "\n".join(blocks)


def to_vtt(transcript: tpb.Transcript, layout: Layout | None = None) -> str:
    blocks = [
        f"{vtt_time(c.start)} --> {vtt_time(c.end)}\n{_vtt_escape(c.text)}\n"
        for c in cues(transcript, layout)
    ]
    return "\n".join(["WEBVTT\n", *blocks])


def srt_time(seconds: float) -> str:
    """HH:MM:SS,mmm"""
    return _clock(seconds, ",")


def vtt_time(seconds: float) -> str:
    """HH:MM:SS.mmm"""
    return _clock(seconds, ".")


def _clock(seconds: float, separator: str) -> str:
    ms = max(0, round(seconds * 1000))
    hours, ms = divmod(ms, 3_600_000)
    minutes, ms = divmod(ms, 60_000)
    secs, ms = divmod(ms, 1000)
    return f"{hours:02d}:{minutes:02d}:{secs:02d}{separator}{ms:03d}"


def _vtt_escape(text: str) -> str:
    # WebVTT cue text is markup: a bare & or < would start an entity or a tag.
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


# --- cues ---------------------------------------------------------------------------------------


def cues(transcript: tpb.Transcript, layout: Layout | None = None) -> list[Cue]:
    """The transcript cut into subtitle cues, in order and never overlapping."""
    layout = layout or layout_for(transcript.language_code)
    result: list[Cue] = []
    for segment in transcript.segments:
        for words in _cue_words(_timed_words(segment), layout):
            start = max(words[0].start, result[-1].end if result else 0.0)
            end = max(words[-1].end, start + MIN_CUE_SECONDS)
            result.append(Cue(start, end, wrap([w.text for w in words], layout)))
    # Stretching a short cue must not run into the next one.
    for i in range(len(result) - 1):
        if result[i].end > result[i + 1].start:
            result[i] = Cue(result[i].start, result[i + 1].start, result[i].lines)
    return [c for c in result if c.end > c.start]


def _timed_words(segment: tpb.Segment) -> list[_Word]:
    if segment.words:
        words = [
            _Word(w.word.strip(), w.start_seconds, max(w.end_seconds, w.start_seconds))
            for w in segment.words
            if w.word.strip()
        ]
        if words:
            return words
    texts = segment.text.split()
    if not texts:
        return []
    # No word timestamps: share the segment's time by the words' lengths (+1 for the space).
    span = max(0.0, segment.end_seconds - segment.start_seconds)
    total = sum(len(t) + 1 for t in texts)
    words, at = [], segment.start_seconds
    for text in texts:
        duration = span * (len(text) + 1) / total
        words.append(_Word(text, at, at + duration))
        at += duration
    return words


def _cue_words(words: list[_Word], layout: Layout) -> list[list[_Word]]:
    """Group a segment's words into as few cues as fit the layout, of even length (so a long
    segment does not end in a one-word cue)."""
    greedy = _greedy(words, layout)
    if len(greedy) < 2:
        return greedy
    target = sum(len(w.text) + 1 for w in words) / len(greedy)
    groups: list[list[_Word]] = [[]]
    for word in words:
        size = sum(len(w.text) + 1 for w in groups[-1])
        if groups[-1] and size + (len(word.text) + 1) / 2 > target and len(groups) < len(greedy):
            groups.append([])
        groups[-1].append(word)
    return groups if all(_fits(g, layout) for g in groups) else greedy


def _greedy(words: list[_Word], layout: Layout) -> list[list[_Word]]:
    groups: list[list[_Word]] = []
    current: list[_Word] = []
    for word in words:
        if current and not _fits([*current, word], layout):
            groups.append(current)
            current = []
        current.append(word)
    if current:
        groups.append(current)
    return groups


def _fits(words: list[_Word], layout: Layout) -> bool:
    lines = wrap([w.text for w in words], layout, balance=False)
    return len(lines) <= layout.max_lines and (
        len(words) == 1 or words[-1].end - words[0].start <= layout.max_cue_seconds
    )


def wrap(words: list[str], layout: Layout, balance: bool = True) -> tuple[str, ...]:
    """Lines of at most `max_line_chars` (a longer single word gets a line of its own). With
    `balance`, text that needs two lines is split where the longer line is shortest."""
    lines: list[list[str]] = [[]]
    for word in words:
        line = lines[-1]
        if line and len(" ".join([*line, word])) > layout.max_line_chars:
            lines.append([word])
        else:
            line.append(word)
    if balance and len(lines) == 2:
        flat = [w for line in lines for w in line]
        best = min(
            range(1, len(flat)),
            key=lambda i: max(len(" ".join(flat[:i])), len(" ".join(flat[i:]))),
        )
        lines = [flat[:best], flat[best:]]
    return tuple(" ".join(line) for line in lines if line)
