"""A synthetic 440 Hz tone, and how to find it again in decoded audio."""

from __future__ import annotations

import numpy as np

from services.common.audio import SAMPLE_RATE

TONE_HZ = 440.0
SECONDS = 2.0
# Codecs add priming/padding (AAC ~21-46 ms, MP3 ~50 ms, Opus 6.5 ms).
DURATION_TOLERANCE = 0.1


def tone(
    seconds: float = SECONDS, rate: int = 44_100, channels: int = 1, noise: float = 0.0
) -> np.ndarray:
    """A 0.5-amplitude 440 Hz sine on every channel, shape (frames, channels), float32.

    `noise` adds white noise so lossy codecs have something to spend bytes on (a pure tone
    compresses so well that "half the file" can end inside the first audio page).
    """
    t = np.arange(round(seconds * rate)) / rate
    mono = 0.5 * np.sin(2 * np.pi * TONE_HZ * t)
    if noise:
        mono += noise * np.random.default_rng(7).standard_normal(len(t))
    return np.repeat(mono[:, None], channels, axis=1).astype(np.float32)


def peak_hz(samples: np.ndarray) -> float:
    spectrum = np.abs(np.fft.rfft(samples * np.hanning(len(samples))))
    return float(np.argmax(spectrum) * SAMPLE_RATE / len(samples))
