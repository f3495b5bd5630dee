"""Audio no cache has seen: each call's clip is the same speech with a unique, inaudible mark.

The scheduler's result cache and in-flight sharing key on a digest of the audio bytes
(services/scheduler/fingerprints.py), so a load test that repeats a few clips measures Redis
look-ups, not transcription. Each variant here is the clip's samples after a 64-sample (4 ms)
lead-in whose samples are 0 or 1 LSB of 16-bit PCM (-90 dBFS, below any microphone's noise),
spelling a random run number and the call's number in binary. Two calls of one run, or of two
runs, never send the same bytes; the speech itself is untouched.
"""

from __future__ import annotations

import random
import threading
from dataclasses import dataclass

import numpy as np

from devsupport import evalset
from services.common.audio import decode, encode_wav

MARK_BITS = 64  # 32 bits of run number, 32 of call number


@dataclass(frozen=True)
class Variant:
    content: bytes  # a 16 kHz mono 16-bit WAV
    filename: str
    language: str
    seconds: float


def mark(run: int, call: int) -> np.ndarray:
    """The lead-in: one sample per bit of (run, call), each 0 or 1 (1 LSB)."""
    word = ((run & 0xFFFFFFFF) << 32) | (call & 0xFFFFFFFF)
    bits = [(word >> (MARK_BITS - 1 - i)) & 1 for i in range(MARK_BITS)]
    return np.asarray(bits, dtype=np.int16)


def pcm16(samples: np.ndarray) -> np.ndarray:
    """Float samples in [-1, 1] as 16-bit PCM, rounded as encode_wav rounds them."""
    return np.rint(np.clip(samples, -1.0, 1.0) * 32767.0).astype(np.int16)


class UniqueAudio:
    """Hands out a fresh variant of one of the clips per call (thread-safe)."""

    def __init__(self, clips: list[evalset.Clip], run: int | None = None) -> None:
        if not clips:
            raise ValueError("no clips to vary")
        self._clips = clips
        self._pcm = [pcm16(decode(clip.read(), clip.path.name)) for clip in clips]
        self._run = random.getrandbits(32) if run is None else run
        self._calls = 0
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._clips)

    def variant(self, index: int) -> Variant:
        """Clip number `index` (modulo the number of clips) with the next call's mark."""
        with self._lock:
            call = self._calls
            self._calls += 1
        clip = self._clips[index % len(self._clips)]
        pcm = np.concatenate([mark(self._run, call), self._pcm[index % len(self._clips)]])
        return Variant(
            content=encode_wav(pcm),
            filename=f"{clip.id}.wav",
            language=clip.language,
            seconds=clip.duration_seconds,
        )
