"""Raw PCM of a live session to 16 kHz mono float32.

The caller's audio arrives as raw interleaved samples (LINEAR16: 16-bit signed little-endian;
FLOAT32: 32-bit IEEE little-endian, -1..1) at 8 to 48 kHz, one or two channels. A chunk need
not end on a sample boundary: the bytes of an incomplete frame (all channels of one sample) are
kept for the next chunk. Channels are averaged; other rates go through a streaming soxr
resampler (the same library and quality as the file path's decoder), whose few milliseconds of
delay are released by `flush` at the end of the session.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import soxr

from services.common.errors import InvalidArgument

SAMPLE_RATE = 16_000
LINEAR16 = "linear16"
FLOAT32 = "float32"
ENCODINGS = (LINEAR16, FLOAT32)
MIN_RATE, MAX_RATE = 8_000, 48_000
MAX_CHANNELS = 2
_DTYPES: dict[str, np.dtype[Any]] = {LINEAR16: np.dtype("<i2"), FLOAT32: np.dtype("<f4")}


class PcmDecoder:
    def __init__(self, encoding: str, sample_rate: int, channels: int) -> None:
        if encoding not in _DTYPES:
            raise InvalidArgument(
                f"unknown audio encoding {encoding!r}; use LINEAR16 or FLOAT32",
                field="streaming_config.encoding",
            )
        if not MIN_RATE <= sample_rate <= MAX_RATE:
            raise InvalidArgument(
                f"sample_rate_hertz {sample_rate} is out of range; send {MIN_RATE} to {MAX_RATE}",
                field="streaming_config.sample_rate_hertz",
            )
        if not 1 <= channels <= MAX_CHANNELS:
            raise InvalidArgument(
                f"audio_channel_count {channels} is out of range; send 1 or 2 (0 means 1)",
                field="streaming_config.audio_channel_count",
            )
        self.encoding = encoding
        self.sample_rate = sample_rate
        self.channels = channels
        self._dtype = _DTYPES[encoding]
        self._frame_bytes = self._dtype.itemsize * channels
        self._remainder = b""
        self._resampler = (
            None
            if sample_rate == SAMPLE_RATE
            else soxr.ResampleStream(sample_rate, SAMPLE_RATE, 1, dtype="float32", quality="HQ")
        )
        self.bytes_in = 0

    @property
    def input_seconds(self) -> float:
        """Audio received so far, in seconds of the caller's stream."""
        return self.bytes_in // self._frame_bytes / self.sample_rate

    def feed(self, data: bytes) -> np.ndarray:
        """The 16 kHz mono samples that `data` (and the remainder before it) completes."""
        self.bytes_in += len(data)
        data = self._remainder + data
        usable = len(data) - len(data) % self._frame_bytes
        self._remainder = data[usable:]
        if not usable:
            return np.zeros(0, dtype=np.float32)
        samples = np.frombuffer(data[:usable], dtype=self._dtype)
        if self.encoding == LINEAR16:
            mono = samples.astype(np.float32) / 32768.0
        else:
            mono = np.nan_to_num(samples.astype(np.float32), nan=0.0, posinf=1.0, neginf=-1.0)
            np.clip(mono, -1.0, 1.0, out=mono)
        if self.channels > 1:
            mono = mono.reshape(-1, self.channels).mean(axis=1, dtype=np.float32)
        if self._resampler is not None:
            mono = self._resampler.resample_chunk(mono)
        return np.ascontiguousarray(mono, dtype=np.float32)

    def flush(self) -> np.ndarray:
        """What the resampler still holds (an incomplete last frame is dropped)."""
        self._remainder = b""
        if self._resampler is None:
            return np.zeros(0, dtype=np.float32)
        return np.ascontiguousarray(
            self._resampler.resample_chunk(np.zeros(0, dtype=np.float32), last=True),
            dtype=np.float32,
        )
