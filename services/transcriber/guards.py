"""Flags that explain why a segment's text may be invented or unreliable.

Whisper invents text over silence, noise and music, and loops on repeated phrases. Callers get
the flags with each segment and can filter on them; nothing is removed here.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

HIGH_NO_SPEECH_PROB = "high_no_speech_prob"
LOW_AVG_LOGPROB = "low_avg_logprob"
HIGH_COMPRESSION_RATIO = "high_compression_ratio"
REPETITION = "repetition"
SUSPECTED_HALLUCINATION = "suspected_hallucination"

_WORD = re.compile(r"\w+", re.UNICODE)


@dataclass(frozen=True)
class Thresholds:
    no_speech_prob: float = 0.6
    avg_logprob: float = -1.0
    compression_ratio: float = 2.4


def segment_flags(
    text: str,
    avg_logprob: float,
    no_speech_prob: float,
    compression_ratio: float,
    previous_text: str,
    thresholds: Thresholds,
) -> list[str]:
    flags = []
    if no_speech_prob > thresholds.no_speech_prob:
        flags.append(HIGH_NO_SPEECH_PROB)
    if avg_logprob < thresholds.avg_logprob:
        flags.append(LOW_AVG_LOGPROB)
    if compression_ratio > thresholds.compression_ratio:
        flags.append(HIGH_COMPRESSION_RATIO)
    if _is_repetitive(text, previous_text):
        flags.append(REPETITION)
    if len(flags) >= 2:
        flags.append(SUSPECTED_HALLUCINATION)
    return flags


def _is_repetitive(text: str, previous_text: str) -> bool:
    """The same text as the previous segment, or one phrase looping inside the segment."""
    words = [w.lower() for w in _WORD.findall(text)]
    if words and words == [w.lower() for w in _WORD.findall(previous_text)]:
        return True
    return any(_repeats(words, size) >= max(4, 12 // size) for size in (1, 2, 3, 4))


def _repeats(words: list[str], size: int) -> int:
    """The longest run of the same n-gram repeated back to back."""
    best = 1
    for offset in range(size):
        run = 1
        for i in range(offset + size, len(words) - size + 1, size):
            if words[i : i + size] == words[i - size : i]:
                run += 1
                best = max(best, run)
            else:
                run = 1
    return best
