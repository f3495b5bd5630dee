"""Encoding test audio in memory, in every format and shape callers send."""

from __future__ import annotations

import io
from typing import Any

import av
import numpy as np
import soundfile as sf

LAYOUTS = {1: "mono", 2: "stereo", 6: "5.1"}


def sf_bytes(signal: np.ndarray, rate: int, fmt: str, subtype: str) -> bytes:
    """libsndfile: WAV/FLAC/OGG/MP3; `signal` is (frames,) or (frames, channels) float32."""
    buffer = io.BytesIO()
    sf.write(buffer, signal, rate, format=fmt, subtype=subtype)
    return buffer.getvalue()


def av_bytes(
    signal: np.ndarray,
    rate: int,
    container: str,
    codec: str,
    options: dict[str, str] | None = None,
    video: bool = False,
) -> bytes:
    """FFmpeg: any container/codec; with `video`, a small moving picture track as well."""
    frames = signal if signal.ndim == 2 else signal[:, None]
    layout = LAYOUTS[frames.shape[1]]
    buffer = io.BytesIO()
    with av.open(buffer, mode="w", format=container, options=options or {}) as out:
        picture: Any = None
        if video:
            picture = out.add_stream("mpeg4", rate=10)
            picture.width, picture.height, picture.pix_fmt = 64, 64, "yuv420p"
        stream: Any = out.add_stream(codec, rate=rate, layout=layout)
        resampler = av.AudioResampler(
            format=stream.codec_context.format.name,
            layout=layout,
            rate=rate,
            frame_size=stream.codec_context.frame_size or None,
        )
        frame = av.AudioFrame.from_ndarray(
            np.ascontiguousarray(frames.T.astype(np.float32)), format="fltp", layout=layout
        )
        frame.sample_rate = rate
        if picture is not None:
            for i in range(int(len(frames) / rate * 10)):
                image = np.full((64, 64, 3), (i * 7) % 255, dtype=np.uint8)
                out.mux(picture.encode(av.VideoFrame.from_ndarray(image, format="rgb24")))
            out.mux(picture.encode(None))
        for chunk in [*resampler.resample(frame), *resampler.resample(None)]:
            out.mux(stream.encode(chunk))
        out.mux(stream.encode(None))
    return buffer.getvalue()


def resample(samples: np.ndarray, rate: int, source_rate: int = 16_000) -> np.ndarray:
    """Linear-interpolation resampling: plenty for test signals."""
    count = int(len(samples) * rate / source_rate)
    positions = np.arange(count) * source_rate / rate
    return np.interp(positions, np.arange(len(samples)), samples).astype(np.float32)


def video_only(container: str, codec: str) -> bytes:
    buffer = io.BytesIO()
    with av.open(buffer, mode="w", format=container) as out:
        stream: Any = out.add_stream(codec, rate=10)
        stream.width, stream.height, stream.pix_fmt = 64, 64, "yuv420p"
        for i in range(10):
            image = np.full((64, 64, 3), i * 20, dtype=np.uint8)
            out.mux(stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")))
        out.mux(stream.encode(None))
    return buffer.getvalue()


def silent_flac(seconds: float, rate: int = 8000) -> bytes:
    """Digital silence compresses to almost nothing: hours of audio in a few hundred KB."""
    buffer = io.BytesIO()
    block = np.zeros(1 << 20, dtype=np.int16)
    remaining = int(seconds * rate)
    with sf.SoundFile(buffer, "w", rate, 1, format="FLAC", subtype="PCM_16") as out:
        while remaining > 0:
            out.write(block[: min(remaining, len(block))])
            remaining -= len(block)
    return buffer.getvalue()
