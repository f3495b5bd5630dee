"""Decoding presets: one table, keyed by language and preset name.

Every row decodes at temperature 0 (beam search for "accurate", greedy for "fast") and falls
back to sampling at higher temperatures only when a window looks wrong (compression ratio or
log-probability thresholds).
In faster-whisper a non-zero *first* temperature turns beam search off, so every tuple starts
at 0.0. Languages without a row of their own use the "auto" row with the language forced.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

ACCURATE = "accurate"
FAST = "fast"
PRESET_NAMES = (ACCURATE, FAST)
AUTO = "auto"

_FALLBACK = (0.0, 0.2, 0.4, 0.6, 0.8, 1.0)


@dataclass(frozen=True)
class DecodePreset:
    beam_size: int = 5
    best_of: int = 5
    patience: float = 1.0
    temperatures: tuple[float, ...] = _FALLBACK
    condition_on_previous_text: bool = True
    compression_ratio_threshold: float = 2.4
    log_prob_threshold: float = -1.0
    no_speech_threshold: float = 0.6
    repetition_penalty: float = 1.0
    no_repeat_ngram_size: int = 0
    # Silero VAD (faster-whisper's VadOptions)
    vad_threshold: float = 0.5
    vad_min_silence_ms: int = 1000
    vad_speech_pad_ms: int = 400
    # With the VAD on: decode each speech region (merged with neighbours up to this many
    # seconds) as its own window (see regions.py); None = faster-whisper's glued-speech VAD.
    vad_region_max_seconds: float | None = 25.0
    # ... and each region's window starts this much before the VAD's onset (see regions.lead_in)
    vad_region_lead_ms: int = 0
    # ... and speech a segment claims but never wrote is decoded again on its own (skips.py)
    redecode_skipped: bool = False
    # Language detection over several 30 s windows when no language is given
    language_detection_segments: int = 3
    # Skip silent stretches longer than this when a segment looks hallucinated (word timestamps)
    hallucination_silence_threshold: float | None = None
    # The initial prompt when the caller gives none: it sets the style (punctuation, spelling)
    # the first window is written in.
    default_prompt: str | None = None

    def __post_init__(self) -> None:
        if not self.temperatures or self.temperatures[0] != 0.0:
            raise ValueError("the temperature tuple must start at 0.0 to keep beam search on")

    @property
    def region_lead_seconds(self) -> float:
        return self.vad_region_lead_ms / 1000

    def transcribe_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for faster-whisper's WhisperModel.transcribe."""
        return {
            "beam_size": self.beam_size,
            "best_of": self.best_of,
            "patience": self.patience,
            "temperature": list(self.temperatures),
            "condition_on_previous_text": self.condition_on_previous_text,
            "compression_ratio_threshold": self.compression_ratio_threshold,
            "log_prob_threshold": self.log_prob_threshold,
            "no_speech_threshold": self.no_speech_threshold,
            "repetition_penalty": self.repetition_penalty,
            "no_repeat_ngram_size": self.no_repeat_ngram_size,
            "language_detection_segments": self.language_detection_segments,
            "hallucination_silence_threshold": self.hallucination_silence_threshold,
        }

    def vad_parameters(self) -> dict[str, Any]:
        return {
            "threshold": self.vad_threshold,
            "min_silence_duration_ms": self.vad_min_silence_ms,
            "speech_pad_ms": self.vad_speech_pad_ms,
        }


# Chosen by measurement on the shared clips and a 3-minute Korean file (docs/presets.md):
# every row decodes each pause-bounded speech region on its own (regions of up to 25 s), which
# took Korean long-form CER from 21% (faster-whisper's defaults) to under 9%; each region's
# window starts 400 ms before the VAD's onset, which keeps a soft first syllable (round 5); speech
# a window's segment claims but never wrote is decoded again (round 7).
_ACCURATE = DecodePreset(
    vad_min_silence_ms=500,
    vad_speech_pad_ms=200,
    vad_region_max_seconds=25.0,
    vad_region_lead_ms=400,
    redecode_skipped=True,
    condition_on_previous_text=False,
)
_FAST = replace(_ACCURATE, beam_size=1, best_of=1, condition_on_previous_text=True)

PRESETS: dict[tuple[str, str], DecodePreset] = {
    ("ko", ACCURATE): _ACCURATE,
    ("ko", FAST): _FAST,
    ("en", ACCURATE): _ACCURATE,
    ("en", FAST): _FAST,
    # Detected and other languages: the same rows (measured on Korean and English only).
    (AUTO, ACCURATE): _ACCURATE,
    (AUTO, FAST): _FAST,
}


def lookup(language: str, preset: str) -> DecodePreset:
    """The preset row for a language ("" = detect) and a preset name."""
    if preset not in PRESET_NAMES:
        raise ValueError(f"unknown preset {preset!r}; known: {', '.join(PRESET_NAMES)}")
    return PRESETS.get((language, preset)) or PRESETS[(AUTO, preset)]
