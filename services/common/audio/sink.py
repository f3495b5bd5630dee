"""Where decoded blocks go: resampled to 16 kHz into one array (or, as int16, a file), held to the
declared (or admitted) length plus its slack and to the caller's limit: decoding stops the moment
either is passed."""

from __future__ import annotations

from typing import BinaryIO

import numpy as np
import soxr

from services.common.audio.bounds import Hold, allowed, check_format, longer_than_declared
from services.common.audio.messages import damaged, secs
from services.common.audio.pcm_file import PcmFile
from services.common.audio.types import SAMPLE_RATE, Samples
from services.common.errors import BadAudio

# Frames per block read from libsndfile and grouped from PyAV frames before resampling: big enough
# that per-call overhead vanishes, small enough (~1.4 s at 48 kHz) that blocks cost little memory.
BLOCK_FRAMES = 1 << 16
# Decoded audio may differ from the declared length by codec priming/padding (tens of ms).
_PADDING_SECONDS = 0.25
# Truncated = more than this much shorter than declared and under _TRUNCATED_RATIO of it.
_TRUNCATED_GAP_SECONDS = 0.5
_TRUNCATED_RATIO = 0.9
# Cap on the output buffer reserved up front from a declared length, so a lying header cannot
# reserve gigabytes; longer audio still decodes, the buffer grows as needed.
_PREALLOCATE_MAX_SECONDS = 3600.0
_INITIAL_SECONDS = 60.0


class Sink:
    """Takes mono float32 blocks at any rate; keeps them resampled to 16 kHz in one array of
    `dtype` (float32 in [-1, 1], or int16 PCM), or with `out` as int16 PCM written to that file
    (memory then does not grow with the audio). With `hold`, audio longer than it allows is
    refused as it arrives, so a header that understates the length costs no more than it says.

    The array is reserved from the declared length so long audio is not copied while it grows;
    reserved but unwritten pages are never touched, so over-reserving costs no memory.
    """

    def __init__(
        self,
        expected_seconds: float | None,
        max_seconds: float | None,
        dtype: type[np.generic] = np.float32,
        hold: Hold | None = None,
        out: BinaryIO | None = None,
    ) -> None:
        if hold is not None:
            expected_seconds = hold.seconds
        seconds = _INITIAL_SECONDS if expected_seconds is None else expected_seconds + 1.0
        seconds = min(seconds, _PREALLOCATE_MAX_SECONDS)
        if hold is not None:
            seconds = min(seconds, allowed(hold.seconds))
        if max_seconds is not None:
            seconds = min(seconds, max_seconds + 2 * _PADDING_SECONDS)
        self._out = out
        if out is not None:  # written to the file as int16; nothing kept in memory
            dtype, seconds = np.int16, 0.0
        self._dtype = dtype
        self._data: np.ndarray = np.empty(max(int(seconds * SAMPLE_RATE), 1), dtype=dtype)
        self._size = 0
        self._rate = 0
        self._resampler: soxr.ResampleStream | None = None
        self._max_seconds = max_seconds
        self._hold = hold
        self._most = None if hold is None else allowed(hold.seconds)
        self.seconds = 0.0  # of input audio written

    def write(self, mono: Samples, rate: int) -> None:
        if rate != self._rate:
            check_format(rate, 1, "")  # a decoder may report a rate its header did not
            self._flush()
            self._rate = rate
            self._resampler = (
                None
                if rate == SAMPLE_RATE
                else soxr.ResampleStream(rate, SAMPLE_RATE, 1, dtype="float32", quality="HQ")
            )
        self.seconds += len(mono) / rate
        if self._hold is not None and self._most is not None and self.seconds > self._most:
            raise longer_than_declared(self._hold.seconds, self._hold.admitted)
        if not mono.flags.writeable:
            mono = mono.copy()
        # NaN/inf (possible in float WAVs) would smear across the resampler's filter.
        if not np.isfinite(mono).all():
            np.nan_to_num(mono, copy=False, nan=0.0, posinf=1.0, neginf=-1.0)
        np.clip(mono, -1.0, 1.0, out=mono)
        if self._max_seconds is not None and self.seconds > limit_stop(self._max_seconds):
            raise over_limit(self._max_seconds)
        self._append(mono if self._resampler is None else self._resampler.resample_chunk(mono))

    def finish(self) -> np.ndarray | PcmFile:
        self._flush()
        if self._out is not None:
            self._out.flush()
            return PcmFile(self._out, self._size)
        return self._data[: self._size]

    def _flush(self) -> None:
        if self._resampler is not None:
            self._append(self._resampler.resample_chunk(np.zeros(0, np.float32), last=True))
            self._resampler = None

    def _append(self, chunk: Samples) -> None:
        end = self._size + len(chunk)
        if self._out is not None:
            self._out.write(_to_pcm16(chunk).tobytes())
            self._size = end
            return
        if end > len(self._data):
            grown = np.empty(max(end, len(self._data) * 3 // 2), dtype=self._dtype)
            grown[: self._size] = self._data[: self._size]
            self._data = grown
        # The resampler can overshoot full scale slightly; clip while copying in.
        if self._dtype == np.int16:
            self._data[self._size : end] = _to_pcm16(chunk)
        else:
            np.clip(chunk, -1.0, 1.0, out=self._data[self._size : end])
        self._size = end


def _to_pcm16(chunk: Samples) -> np.ndarray:
    # x 32768 as libsndfile reads 16-bit PCM (÷ 32768): 16-bit sources come back exact.
    scaled = chunk * 32768.0
    np.rint(scaled, out=scaled)
    np.clip(scaled, -32768.0, 32767.0, out=scaled)
    return scaled.astype(np.int16)


def finish(sink: Sink, declared: float | None, failed: bool) -> np.ndarray | PcmFile:
    samples = sink.finish()
    check_complete(declared, sink.seconds, failed)
    if failed and declared is None:
        raise damaged(sink.seconds)
    if len(samples) == 0:
        raise BadAudio("audio contains no samples")
    return samples


def check_complete(declared: float | None, decoded: float, failed: bool) -> None:
    """Raise when far less was decoded than declared, or an error stopped decoding part way."""
    if declared is None:
        return
    gap = declared - decoded
    if gap > _TRUNCATED_GAP_SECONDS and (failed or decoded < _TRUNCATED_RATIO * declared):
        raise BadAudio(
            f"audio is truncated: the header declares {secs(declared)} s but only "
            f"{secs(decoded)} s could be decoded"
        )


def check_limit(declared: float | None, max_seconds: float | None) -> None:
    # Codec priming/padding can add a little to a declared length that is really at the limit.
    if (
        max_seconds is not None
        and declared is not None
        and declared > max_seconds + _PADDING_SECONDS
    ):
        raise BadAudio(f"audio is {secs(declared)} s long; the limit is {secs(max_seconds)} s")


def limit_stop(max_seconds: float) -> float:
    """The most audio a caller's limit lets through (codec padding on audio right at it)."""
    return max_seconds + _PADDING_SECONDS


def over_limit(max_seconds: float) -> BadAudio:
    return BadAudio(f"audio is longer than the limit of {secs(max_seconds)} s")
