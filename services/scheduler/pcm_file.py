"""Long audio decoded to a file instead of memory: 16 kHz int16 mono PCM on disk, and an
array-like view of it that reads only the stretch asked for.

Planning a multi-hour file this way costs the scheduler a few blocks of memory, not the whole
file as PCM (460 MB for 4 hours). Decoding goes block by block through libsndfile (WAV, FLAC,
OGG, MP3) or PyAV (the rest), resampled as a stream, as services.common.audio does in memory.
"""

from __future__ import annotations

import contextlib
import os
from typing import BinaryIO

import av
import numpy as np
import soundfile as sf
import soxr

from services.common.audio import SAMPLE_RATE, Pcm16, Samples
from services.common.audio.bounds import allowed, longer_than_declared
from services.common.audio.ffmpeg_reader import _frame_to_mono
from services.common.audio.messages import damaged, named, secs, undecodable
from services.common.audio.sink import BLOCK_FRAMES
from services.common.errors import BadAudio

_BYTES_PER_SAMPLE = 2
# Codec priming/padding may take audio a little past its limit.
_PADDING_SECONDS = 0.25


class PcmFile:
    """int16 samples in a file, sliced like an array (`len`, `[a:b]`) without loading it."""

    def __init__(self, file: BinaryIO, count: int) -> None:
        self._fd = file.fileno()
        self._count = count

    def __len__(self) -> int:
        return self._count

    def __getitem__(self, index: slice) -> Pcm16:
        first, last, step = index.indices(self._count)
        if step != 1:
            raise ValueError("PcmFile takes contiguous slices only")
        size = max(0, last - first) * _BYTES_PER_SAMPLE
        data = os.pread(self._fd, size, first * _BYTES_PER_SAMPLE)
        return np.frombuffer(data, dtype=np.int16)


class _Writer:
    """Mono float32 blocks at any rate in, 16 kHz int16 out to the file."""

    def __init__(
        self, out: BinaryIO, max_seconds: float | None, admitted_seconds: float | None
    ) -> None:
        self._out = out
        self._max_seconds = max_seconds
        self._admitted = admitted_seconds if admitted_seconds else None
        self._rate = 0
        self._resampler: soxr.ResampleStream | None = None
        self.samples = 0
        self.seconds = 0.0

    def write(self, mono: Samples, rate: int) -> None:
        if rate != self._rate:
            self._flush()
            self._rate = rate
            self._resampler = (
                None
                if rate == SAMPLE_RATE
                else soxr.ResampleStream(rate, SAMPLE_RATE, 1, dtype="float32", quality="HQ")
            )
        self.seconds += len(mono) / rate
        if self._admitted is not None and self.seconds > allowed(self._admitted):
            raise longer_than_declared(self._admitted, admitted=True)
        if self._max_seconds is not None and self.seconds > self._max_seconds + _PADDING_SECONDS:
            raise BadAudio(f"audio is longer than the limit of {secs(self._max_seconds)} s")
        mono = np.nan_to_num(mono, nan=0.0, posinf=1.0, neginf=-1.0)
        self._put(mono if self._resampler is None else self._resampler.resample_chunk(mono))

    def finish(self) -> int:
        self._flush()
        self._out.flush()
        if self.samples == 0:
            raise BadAudio("audio contains no samples")
        return self.samples

    def _flush(self) -> None:
        if self._resampler is not None:
            self._put(self._resampler.resample_chunk(np.zeros(0, np.float32), last=True))
            self._resampler = None

    def _put(self, chunk: Samples) -> None:
        # x 32768 as libsndfile reads 16-bit PCM: 16-bit sources come back exact.
        scaled = np.rint(chunk * 32768.0)
        np.clip(scaled, -32768.0, 32767.0, out=scaled)
        self._out.write(scaled.astype(np.int16).tobytes())
        self.samples += len(chunk)


def decode_to_file(
    source: BinaryIO,
    filename: str,
    max_seconds: float | None,
    out: BinaryIO,
    admitted_seconds: float | None = None,
) -> int:
    """Decode `source` (a seekable file) into `out` as 16 kHz int16 mono; the sample count.
    Decoding stops past `admitted_seconds` (the length probed at admission) plus its slack."""
    writer = _Writer(out, max_seconds, admitted_seconds)
    source.seek(0)
    sound_file = _open_soundfile(source)
    if sound_file is not None:
        with sound_file:
            _decode_soundfile(sound_file, writer)
        return writer.finish()
    source.seek(0)
    name = named(filename)
    try:
        container = av.open(source, mode="r", metadata_errors="ignore")
    except (av.FFmpegError, OSError, ValueError) as error:
        raise undecodable(name, "not a recognised audio format") from error
    with container:
        if not container.streams.audio:
            raise undecodable(name, "the file has no audio stream")
        _decode_av(container, container.streams.audio[0], writer)
    return writer.finish()


def _open_soundfile(source: BinaryIO) -> sf.SoundFile | None:
    try:
        sound_file = sf.SoundFile(source)
    except (sf.SoundFileError, RuntimeError, TypeError, ValueError):
        return None
    if sound_file.frames == 0:
        sound_file.close()
        return None
    return sound_file


def _decode_soundfile(sound_file: sf.SoundFile, writer: _Writer) -> None:
    rate, channels = sound_file.samplerate, sound_file.channels
    block = np.empty((BLOCK_FRAMES, channels), dtype=np.float32)
    try:
        while len(got := sound_file.read(out=block)):
            writer.write(got[:, 0] if channels == 1 else got.mean(axis=1, dtype=np.float32), rate)
    except (sf.SoundFileError, RuntimeError) as error:
        raise damaged(writer.seconds) from error


def _decode_av(
    container: av.container.InputContainer, stream: av.AudioStream, writer: _Writer
) -> None:
    pending: list[Samples] = []
    frames, rate = 0, 0
    try:
        for packet in container.demux(stream):
            with contextlib.suppress(av.error.InvalidDataError):  # one damaged packet
                for frame in stream.decode(packet):
                    if frame.samples <= 0 or frame.sample_rate <= 0:
                        continue
                    if pending and frame.sample_rate != rate:
                        writer.write(np.concatenate(pending), rate)
                        pending, frames = [], 0
                    pending.append(_frame_to_mono(frame))
                    frames += frame.samples
                    rate = frame.sample_rate
                    if frames >= BLOCK_FRAMES:
                        writer.write(np.concatenate(pending), rate)
                        pending, frames = [], 0
    except (av.FFmpegError, OSError, ValueError) as error:
        raise damaged(writer.seconds) from error
    if pending:
        writer.write(np.concatenate(pending), rate)
