"""16 kHz int16 mono PCM in a file, sliced like an array without loading it: where
`decode_pcm16_to_file` puts hours of audio that are only cut and re-encoded, so decoding them
costs a few blocks of memory, not the whole file as PCM (460 MB for 4 hours)."""

from __future__ import annotations

import os
from typing import BinaryIO

import numpy as np

from services.common.audio.types import Pcm16

BYTES_PER_SAMPLE = 2


class PcmFile:
    """int16 samples in a file (`len`, contiguous `[a:b]` slices read with pread)."""

    def __init__(self, file: BinaryIO, count: int) -> None:
        self._fd = file.fileno()
        self._count = count

    def __len__(self) -> int:
        return self._count

    def __getitem__(self, index: slice) -> Pcm16:
        first, last, step = index.indices(self._count)
        if step != 1:
            raise ValueError("PcmFile takes contiguous slices only")
        size = max(0, last - first) * BYTES_PER_SAMPLE
        data = os.pread(self._fd, size, first * BYTES_PER_SAMPLE)
        return np.frombuffer(data, dtype=np.int16)
