"""Audio for tests and bench made from the shared evaluation clips (the files stay unmodified)."""

from __future__ import annotations

import numpy as np

from devsupport import evalset
from services.common.audio import SAMPLE_RATE, decode, encode_wav

# The shared clips were recorded 40 dB apart (some FLEURS clips peak at 0.005). Whisper skips
# a very quiet utterance that follows a loud one in the same window, which no single real
# recording would ask of it, so joined clips are brought to one speech level first.
TARGET_RMS = 0.05


def joined(clips: list[evalset.Clip], silence_seconds: float = 0.6) -> tuple[bytes, str]:
    """One WAV of the clips at one loudness with short silences between them, and the joined
    reference."""
    gap = np.zeros(int(silence_seconds * SAMPLE_RATE), dtype=np.float32)
    pieces: list[np.ndarray] = []
    for clip in clips:
        samples = decode(clip.read(), clip.path.name)
        rms = float(np.sqrt(np.mean(samples**2))) or 1.0
        pieces += [np.clip(samples * (TARGET_RMS / rms), -1.0, 1.0), gap]
    return encode_wav(np.concatenate(pieces)), " ".join(c.reference for c in clips)


def korean_long(min_seconds: float = 45.0, start: int = 0) -> tuple[bytes, str, float]:
    """Korean clips joined until at least `min_seconds` (repeating the set if needed), from
    clip number `start` on (so tests can make different long files)."""
    source = evalset.clips("ko")
    chosen: list[evalset.Clip] = []
    total = 0.0
    while total < min_seconds:
        clip = source[(start + len(chosen)) % len(source)]
        chosen.append(clip)
        total += clip.duration_seconds + 0.6
    content, reference = joined(chosen)
    return content, reference, total
