"""Flags that explain why a segment's text may be invented or unreliable.

Whisper invents text over silence, noise and music, and loops on repeated phrases. Callers get
the flags with each segment and can filter on them. Removed outright are only segments whose
evidence leaves no doubt: text over audio with no signal at all (digital silence), and text the
model itself says is probably not speech that is also a loop, a stock subtitle phrase, or of
low confidence (what noise and music make it write).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

HIGH_NO_SPEECH_PROB = "high_no_speech_prob"
LOW_AVG_LOGPROB = "low_avg_logprob"
HIGH_COMPRESSION_RATIO = "high_compression_ratio"
REPETITION = "repetition"
SUSPECTED_HALLUCINATION = "suspected_hallucination"

_WORD = re.compile(r"\w+", re.UNICODE)


# Peak level below which a stretch holds no signal: -70 dBFS. The quietest real recordings in
# the shared set peak near -46 dBFS, so speech is never mistaken for it.
NO_SIGNAL_PEAK = 10 ** (-70 / 20)


def has_no_signal(samples: np.ndarray, start: float, end: float, sample_rate: int) -> bool:
    """True when the audio between `start` and `end` seconds is (near-)digital silence, or when
    the segment starts after the audio has ended: with the VAD off, a sampled fallback window
    over trailing silence stamped "2." and "4." from 34 s to 56 s of a 33.9 s file."""
    first = max(0, int(start * sample_rate))
    if first >= len(samples):
        return True
    piece = samples[first : max(0, int(end * sample_rate))]
    return piece.size > 0 and float(np.max(np.abs(piece))) < NO_SIGNAL_PEAK


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


# What Whisper writes over silence and noise: subtitle credits from its training data.
STOCK_PHRASES = frozenset(
    {
        "you",
        "thank you",
        "thanks for watching",
        "thank you for watching",
        "please subscribe",
        "수고하셨습니다",
        "감사합니다",
        "시청해주셔서 감사합니다",
        "시청해 주셔서 감사합니다",
        "구독과 좋아요 부탁드립니다",
        "mbc 뉴스",
    }
)
# A stock phrase is dropped at a lower no-speech probability than other text.
STOCK_PHRASE_NO_SPEECH_PROB = 0.5


def is_hallucination(
    text: str,
    avg_logprob: float,
    no_speech_prob: float,
    compression_ratio: float,
    thresholds: Thresholds,
) -> bool:
    """Whether a segment is text invented where nobody speaks (and is to be dropped)."""
    words = _WORD.findall(text.lower())
    doubts_speech = no_speech_prob > thresholds.no_speech_prob
    if not words:
        # Only punctuation ("...", seen over white noise): nothing to keep where speech is
        # doubted.
        return doubts_speech
    if doubts_speech and (
        compression_ratio > thresholds.compression_ratio or avg_logprob < thresholds.avg_logprob
    ):
        return True
    return no_speech_prob > STOCK_PHRASE_NO_SPEECH_PROB and " ".join(words) in STOCK_PHRASES


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
