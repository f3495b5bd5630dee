"""What decoding produces and reports: the output rate, the formats read, the sample arrays and
`AudioInfo`. Every module of the package uses these; the package re-exports them."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

SAMPLE_RATE = 16_000

SUPPORTED = "WAV, FLAC, OGG/Opus, OGG/Vorbis, MP3, M4A/AAC, WebM"

Samples = npt.NDArray[np.float32]
Pcm16 = npt.NDArray[np.int16]


@dataclass(frozen=True)
class AudioInfo:
    duration_seconds: float
    sample_rate: int  # native rate of the file
    channels: int
    format: str  # short name e.g. "wav", "flac", "ogg", "mp3", "mp4", "webm"
    # True when the headers declare the duration (checked against the audio held); False when
    # the file declares none and it was measured.
    exact: bool
