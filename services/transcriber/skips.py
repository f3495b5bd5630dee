"""Speech a window's decoding skipped, found by comparing a segment's text with the speech it
claims, so the engine can decode that speech again on its own.

Whisper base sometimes writes the first sentence of a window and stamps its end seconds later,
over a pause and a whole further sentence, which it never writes: 14.9 s of joined Korean lost
its middle sentence this way (CER 0.38; docs/presets.md, round 7). The sign is a segment
that spans several of the VAD's speech spans with far fewer letters than that much speech
holds. Pure logic; `engine.Engine` does the decoding.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

Span = tuple[float, float]

# Letters (no spaces or punctuation) per second of speech below which a segment cannot have
# written everything it spans. Measured on the shared clips and joined Korean: Korean segments
# hold 4.1-7 syllables per speech second, English ones 7.7-16 letters (numbers count as their
# digits, hence a low floor); the failure above held 2.6. Other languages are not checked.
LETTERS_PER_SECOND_FLOOR = {"ko": 3.0, "en": 5.0}
# The later spans must hold at least this much speech to be worth decoding again.
MIN_SKIPPED_SPEECH_SECONDS = 1.0
# A re-decoded segment sharing this share of its letter pairs with the original segment
# repeats it (the segment had written that speech after all, just slowly).
REPEAT_SHARE = 0.5

_NOT_LETTERS = re.compile(r"[\W_]+")


def letters(text: str) -> str:
    return _NOT_LETTERS.sub("", text)


def skipped_span(
    start: float,
    end: float,
    text: str,
    spans: Sequence[Span],
    language: str,
    lead_seconds: float = 0.0,
) -> Span | None:
    """The part of [start, end] to decode again, or None: from (`lead_seconds` before) the
    second speech span inside the segment to the segment's end, when the segment spans two or
    more speech spans and has too few letters for all that speech."""
    floor = LETTERS_PER_SECOND_FLOOR.get(language)
    if floor is None:
        return None
    inside = [(max(a, start), min(b, end)) for a, b in spans if b > start and a < end]
    if len(inside) < 2:
        return None
    speech = sum(b - a for a, b in inside)
    if len(letters(text)) >= floor * speech:
        return None
    if sum(b - a for a, b in inside[1:]) < MIN_SKIPPED_SPEECH_SECONDS:
        return None
    return max(inside[0][1], inside[1][0] - lead_seconds), end


def repeats(text: str, original: str) -> bool:
    """Whether `text` mostly repeats `original` (shares most of its letter pairs)."""
    pairs = _pairs(letters(text))
    if not pairs:
        return True
    known = set(_pairs(letters(original)))
    return sum(pair in known for pair in pairs) >= REPEAT_SHARE * len(pairs)


def _pairs(text: str) -> list[str]:
    return [text[i : i + 2] for i in range(len(text) - 1)] or ([text] if text else [])
