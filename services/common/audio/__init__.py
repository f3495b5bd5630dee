"""Decoding and probing of caller audio.

Everything the model sees goes through `decode`: float32 mono at 16 kHz in [-1, 1]. libsndfile
(via soundfile) reads WAV, FLAC, OGG Vorbis/Opus and MP3; PyAV (FFmpeg) reads the rest (M4A/AAC,
WebM, ...). Audio is decoded in blocks and resampled as a stream, so hours of input cost little
more than the 16 kHz result. Every failure is a `BadAudio` whose message says what is wrong.

The parts: `soundfile_reader` (libsndfile), `ffmpeg_reader` (PyAV), `sink` (resampling and the
length checks), `wav_header`, `messages` (the errors) and `types`.
"""

from __future__ import annotations

import io

import numpy as np
import numpy.typing as npt
import soundfile as sf

from services.common.audio.ffmpeg_reader import audio_stream, decode_av, open_av, probe_av
from services.common.audio.messages import named, require_content
from services.common.audio.soundfile_reader import decode_soundfile, open_soundfile, probe_soundfile
from services.common.audio.types import SAMPLE_RATE, SUPPORTED, AudioInfo, Pcm16, Samples

__all__ = [
    "SAMPLE_RATE",
    "SUPPORTED",
    "AudioInfo",
    "Pcm16",
    "Samples",
    "decode",
    "decode_pcm16",
    "encode_flac",
    "encode_wav",
    "probe",
]


def decode(content: bytes, filename: str = "", max_seconds: float | None = None) -> Samples:
    """The audio as float32 mono (channel average) at 16 kHz, values in [-1, 1].

    With `max_seconds`, audio declared longer is refused before decoding, and audio with no
    declared length is refused as soon as decoding passes the limit.
    """
    samples: Samples = _decode(content, filename, max_seconds, np.float32)
    return samples


def decode_pcm16(content: bytes, filename: str = "", max_seconds: float | None = None) -> Pcm16:
    """Like `decode`, but as 16-bit PCM: half the memory, for hours of audio that are only cut
    and re-encoded (never fed to the model as a whole)."""
    samples: Pcm16 = _decode(content, filename, max_seconds, np.int16)
    return samples


def _decode(
    content: bytes, filename: str, max_seconds: float | None, dtype: type[np.generic]
) -> np.ndarray:
    require_content(content)
    name = named(filename)
    sound_file = open_soundfile(content)
    if sound_file is not None:
        with sound_file:
            return decode_soundfile(sound_file, content, name, max_seconds, dtype)
    with open_av(content, name) as container:
        stream = audio_stream(container, content, name)
        return decode_av(container, stream, content, name, max_seconds, dtype)


def probe(content: bytes, filename: str = "") -> AudioInfo:
    """Duration, rate and channels, from headers where the format declares them.

    Decodes only when no duration is declared (exact=False). Truncation inside compressed data is
    found only by `decode`; a WAV header that declares more data than present is found here.
    """
    require_content(content)
    name = named(filename)
    sound_file = open_soundfile(content)
    if sound_file is not None:
        with sound_file:
            return probe_soundfile(sound_file, content, name)
    with open_av(content, name) as container:
        stream = audio_stream(container, content, name)
        return probe_av(container, stream, content, name)


def encode_wav(samples: npt.ArrayLike, sample_rate: int = SAMPLE_RATE) -> bytes:
    """16-bit PCM mono WAV bytes of 1-D float samples in [-1, 1] (clipped, NaN -> 0), or of
    int16 samples as they are."""
    return _encode(samples, sample_rate, "WAV")


def encode_flac(samples: npt.ArrayLike, sample_rate: int = SAMPLE_RATE) -> bytes:
    """Like `encode_wav`, as 16-bit mono FLAC: lossless (decodes to the very same samples) and
    about half the bytes of a WAV on speech, for audio that waits in Redis."""
    return _encode(samples, sample_rate, "FLAC")


def _encode(samples: npt.ArrayLike, sample_rate: int, container: str) -> bytes:
    array = np.asarray(samples)
    if array.ndim != 1:
        raise ValueError(f"encoding takes 1-D mono samples, got shape {array.shape}")
    if array.dtype == np.int16:
        pcm = array
    else:
        # Convert ourselves: libsndfile wraps out-of-range floats around instead of clipping.
        mono = np.nan_to_num(array.astype(np.float32), nan=0.0, posinf=1.0, neginf=-1.0)
        pcm = np.rint(np.clip(mono, -1.0, 1.0) * 32767.0).astype(np.int16)
    buffer = io.BytesIO()
    sf.write(buffer, pcm, sample_rate, format=container, subtype="PCM_16")
    return buffer.getvalue()
