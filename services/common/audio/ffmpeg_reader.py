"""Probing and decoding through PyAV (FFmpeg): every file libsndfile does not open, which covers
the formats it does not read (M4A/AAC, WebM, ...)."""

from __future__ import annotations

import contextlib
from typing import BinaryIO

import av
import numpy as np

from services.common.audio.bounds import check_format, hold_to
from services.common.audio.header import Header
from services.common.audio.length_headers import states_length
from services.common.audio.measure import Progress, av_frames
from services.common.audio.messages import sniff_reason, undecodable
from services.common.audio.pcm_file import PcmFile
from services.common.audio.sink import BLOCK_FRAMES, Sink, check_complete, check_limit, finish
from services.common.audio.source import Source
from services.common.audio.types import SUPPORTED, Samples
from services.common.audio.wav_header import wav_declared_seconds
from services.common.errors import BadAudio

# Raw elementary streams whose FFmpeg duration is a guess from the bitrate, not a header.
_ESTIMATED_DURATION_FORMATS = frozenset({"aac", "mp3", "ac3", "eac3"})
_AV_FORMATS = {"mov,mp4,m4a,3gp,3g2,mj2": "mp4", "matroska,webm": "matroska"}


def open_av(source: Source, name: str) -> av.container.InputContainer:
    try:
        return av.open(source.view(), mode="r", metadata_errors="ignore")
    except (av.FFmpegError, OSError, ValueError) as error:
        raise undecodable(name, sniff_reason(source.head(12))) from error


def audio_stream(
    container: av.container.InputContainer, source: Source, name: str
) -> av.AudioStream:
    if container.streams.audio:
        stream = container.streams.audio[0]
        if stream.codec_context is None:  # e.g. a WAV whose format tag names no codec
            fmt = _av_format(container, source)
            raise BadAudio(
                f"could not decode audio{name}: the {fmt} file's audio codec is unknown or "
                f"not supported (supported: {SUPPORTED})"
            )
        return stream
    if container.streams.video:
        fmt = _av_format(container, source)
        raise BadAudio(f"could not decode audio{name}: the {fmt} file has no audio stream")
    raise undecodable(name, f"not a recognised audio format (supported: {SUPPORTED})")


def _av_format(container: av.container.InputContainer, source: Source) -> str:
    fmt = _AV_FORMATS.get(container.format.name, container.format.name.split(",")[0])
    # FFmpeg has one demuxer for both; the EBML header's DocType tells them apart.
    if fmt == "matroska" and b"webm" in source.head(64):
        return "webm"
    return fmt


def _av_declared_seconds(
    container: av.container.InputContainer, stream: av.AudioStream, source: Source
) -> float | None:
    if container.format.name in _ESTIMATED_DURATION_FORMATS:
        return None
    if container.format.name == "ogg" and not states_length(source, "ogg"):
        return None  # FFmpeg too takes the length from the last granule it finds
    if stream.duration and stream.time_base:
        return float(stream.duration * stream.time_base)
    # The container's duration covers every stream; it stands for the audio only when alone.
    if container.duration and len(container.streams) == 1:
        return container.duration / av.time_base
    return None


def av_header(
    container: av.container.InputContainer, stream: av.AudioStream, source: Source, name: str
) -> Header:
    rate = stream.codec_context.sample_rate
    channels = stream.codec_context.channels
    # 0 = the codec states it only in its frames (the decode pass checks those).
    check_format(rate or 16_000, channels or 1, name)
    declared = _av_declared_seconds(container, stream, source)
    # A WAV whose header declares data that libsndfile found none of (cut after the header).
    wav_seconds = wav_declared_seconds(source)
    if wav_seconds is not None:
        check_complete(wav_seconds, declared or 0.0, failed=False)
    return Header(_av_format(container, source), rate, channels, declared)


def decode_av(
    container: av.container.InputContainer,
    stream: av.AudioStream,
    source: Source,
    name: str,
    max_seconds: float | None,
    admitted: float | None,
    dtype: type[np.generic],
    out: BinaryIO | None = None,
) -> np.ndarray | PcmFile:
    check_format(
        stream.codec_context.sample_rate or 16_000, stream.codec_context.channels or 1, name
    )
    declared = _av_declared_seconds(container, stream, source)
    wav_seconds = wav_declared_seconds(source)
    if wav_seconds is not None:
        declared = max(declared or 0.0, wav_seconds)
    check_limit(declared, max_seconds)
    sink = Sink(declared, max_seconds, dtype, hold_to(declared, admitted), out)
    progress = Progress()
    # Decoders hand out small frames (1024 samples for AAC); group them into blocks for soxr.
    pending: list[Samples] = []
    pending_frames, pending_rate = 0, 0
    # A limit error leaves the generator suspended; close it while the container is still open.
    with contextlib.closing(av_frames(container, stream, progress)) as frames:
        for frame in frames:
            if pending and frame.sample_rate != pending_rate:
                sink.write(np.concatenate(pending), pending_rate)
                pending, pending_frames = [], 0
            pending.append(_frame_to_mono(frame))
            pending_frames += frame.samples
            pending_rate = frame.sample_rate
            if pending_frames >= BLOCK_FRAMES:
                sink.write(np.concatenate(pending), pending_rate)
                pending, pending_frames = [], 0
    if pending:
        sink.write(np.concatenate(pending), pending_rate)
    if sink.seconds == 0 and (progress.failed or progress.skipped) and declared is None:
        raise undecodable(name, sniff_reason(source.head(12)))
    return finish(sink, declared, progress.failed)


def _frame_to_mono(frame: av.AudioFrame) -> Samples:
    """One frame as float32 mono, averaging channels, whatever the decoder's sample format."""
    array: np.ndarray = frame.to_ndarray()
    channels = frame.layout.nb_channels or (array.shape[0] if frame.format.is_planar else 1)
    # Planar formats come as (channels, samples); packed ones interleaved in one row.
    planes = array if frame.format.is_planar else array.reshape(-1, channels).T
    if planes.dtype == np.uint8:
        samples = planes.astype(np.float32)
        samples -= 128.0
        samples *= 1.0 / 128.0
    elif np.issubdtype(planes.dtype, np.integer):
        samples = planes.astype(np.float32)
        samples *= 1.0 / -np.iinfo(planes.dtype).min
    else:
        samples = planes.astype(np.float32, copy=False)
    mono: Samples = samples[0] if channels == 1 else samples.mean(axis=0, dtype=np.float32)
    return mono
