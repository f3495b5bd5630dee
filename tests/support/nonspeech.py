"""Audio where nobody speaks (silence, noise, tones), for the hallucination guards."""

from __future__ import annotations

import numpy as np

from devsupport import evalset
from services.common.audio import SAMPLE_RATE, decode, encode_wav

_NOTES = (261.6, 329.6, 392.0, 523.3, 440.0, 349.2)


def silence(seconds: float) -> np.ndarray:
    return np.zeros(int(seconds * SAMPLE_RATE), dtype=np.float32)


def white_noise(seconds: float, level: float = 0.3, seed: int = 1) -> np.ndarray:
    rng = np.random.default_rng(seed)
    noise = level * rng.standard_normal(int(seconds * SAMPLE_RATE))
    return np.clip(noise, -1.0, 1.0).astype(np.float32)


def pink_noise(seconds: float, level: float = 0.5, seed: int = 2) -> np.ndarray:
    """White noise shaped to 1/f power (the spectrum of most room and machine noise)."""
    n = int(seconds * SAMPLE_RATE)
    spectrum = np.fft.rfft(np.random.default_rng(seed).standard_normal(n))
    k = np.arange(len(spectrum), dtype=np.float64)
    k[0] = 1.0
    shaped = np.fft.irfft(spectrum / np.sqrt(k), n)
    return (level * shaped / np.abs(shaped).max()).astype(np.float32)


def tones(seconds: float) -> np.ndarray:
    """A music-like melody: half-second notes with two harmonics."""
    t = np.arange(int(seconds * SAMPLE_RATE)) / SAMPLE_RATE
    note = (t * 2).astype(int) % len(_NOTES)
    f = np.asarray(_NOTES)[note]
    wave = 0.3 * np.sin(2 * np.pi * f * t) + 0.15 * np.sin(4 * np.pi * f * t)
    wave += 0.1 * np.sin(3 * np.pi * f * t)
    return wave.astype(np.float32)


def speech_then_silence(clip_id: str, silence_seconds: float) -> tuple[bytes, float]:
    """A shared clip followed by silence, as WAV, and where the speech ends (seconds)."""
    clip = evalset.clip(clip_id)
    speech = decode(clip.read(), clip.path.name)
    return encode_wav(np.concatenate([speech, silence(silence_seconds)])), len(speech) / SAMPLE_RATE


def wav(samples: np.ndarray) -> bytes:
    return encode_wav(samples)
