"""Decoding and probing of caller audio.

Everything the model sees goes through `decode`: float32 mono at 16 kHz in [-1, 1]. libsndfile
(via soundfile) reads WAV, FLAC, OGG Vorbis/Opus and MP3; PyAV (FFmpeg) reads the rest (M4A/AAC,
WebM, ...). The audio comes as bytes or as a seekable binary file (never read whole). It is
decoded in blocks and resampled as a stream, so hours of input cost little more than the 16 kHz
result, or only a few blocks with `decode_pcm16_to_file` (the PCM goes to a file). Every failure
is a `BadAudio` whose message says what is wrong.

Nothing goes past what was admitted: sample rates and channel counts outside sane ranges are
refused before decoding; `probe` measures what a file holds in a bounded pass (time budget,
cancel flag) and refuses a file holding more than it declares; `decode` stops at the declared or
admitted length plus a small slack, and at the caller's limit.

The parts: `source` (bytes or file), `soundfile_reader` (libsndfile), `ffmpeg_reader` (PyAV),
`probing` and `measure` (the bounded measuring pass), `bounds` (ranges, slack, budget), `sink`
(resampling and the length checks), `pcm_file` (PCM on disk), `header`, `wav_header` and
`length_headers` (what a file states), `messages` (the errors) and `types`.
"""

from __future__ import annotations

import io
import threading
from typing import BinaryIO

import numpy as np
import numpy.typing as npt
import soundfile as sf

from services.common.audio.bounds import (
    MAX_CHANNELS,
    MAX_SAMPLE_RATE,
    MIN_SAMPLE_RATE,
    Budget,
    Cancelled,
    allowed,
    check_format,
)
from services.common.audio.ffmpeg_reader import audio_stream, decode_av, open_av
from services.common.audio.messages import named, require_content
from services.common.audio.pcm_file import PcmFile
from services.common.audio.probing import check_held, probe_source
from services.common.audio.sink import check_limit
from services.common.audio.soundfile_reader import (
    decode_soundfile,
    open_soundfile,
    soundfile_header,
)
from services.common.audio.source import AudioSource, Source
from services.common.audio.types import SAMPLE_RATE, SUPPORTED, AudioInfo, Pcm16, Samples

__all__ = [
    "MAX_CHANNELS",
    "MAX_SAMPLE_RATE",
    "MIN_SAMPLE_RATE",
    "SAMPLE_RATE",
    "SUPPORTED",
    "AudioInfo",
    "AudioSource",
    "Cancelled",
    "Pcm16",
    "PcmFile",
    "Samples",
    "allowed",
    "decode",
    "decode_pcm16",
    "decode_pcm16_to_file",
    "encode_flac",
    "encode_wav",
    "probe",
]


def decode(
    source: AudioSource,
    filename: str = "",
    max_seconds: float | None = None,
    admitted_seconds: float | None = None,
) -> Samples:
    """The audio as float32 mono (channel average) at 16 kHz, values in [-1, 1].

    `source` is bytes or a seekable binary file. Decoding stops, with BadAudio, once past the
    declared length plus its slack (`allowed`), past `admitted_seconds` (the length probed when
    the audio was admitted; 0 or None = unknown) plus its slack, or past `max_seconds`; audio
    declared longer than `max_seconds` is refused before decoding.
    """
    samples = _decode(source, filename, max_seconds, admitted_seconds, np.float32)
    assert isinstance(samples, np.ndarray)
    return samples


def decode_pcm16(
    source: AudioSource,
    filename: str = "",
    max_seconds: float | None = None,
    admitted_seconds: float | None = None,
) -> Pcm16:
    """Like `decode`, but as 16-bit PCM: half the memory, for hours of audio that are only cut
    and re-encoded (never fed to the model as a whole)."""
    samples = _decode(source, filename, max_seconds, admitted_seconds, np.int16)
    assert isinstance(samples, np.ndarray)
    return samples


def decode_pcm16_to_file(
    source: AudioSource,
    filename: str,
    out: BinaryIO,
    max_seconds: float | None = None,
    admitted_seconds: float | None = None,
) -> PcmFile:
    """Like `decode_pcm16`, but written to `out` (an open binary file) and read back a slice at
    a time: memory does not grow with the audio's length, for hours of audio being cut."""
    pcm = _decode(source, filename, max_seconds, admitted_seconds, np.int16, out)
    assert isinstance(pcm, PcmFile)
    return pcm


def _decode(
    content: AudioSource,
    filename: str,
    max_seconds: float | None,
    admitted: float | None,
    dtype: type[np.generic],
    out: BinaryIO | None = None,
) -> np.ndarray | PcmFile:
    source = Source(content)
    require_content(source.size)
    name = named(filename)
    sound_file = open_soundfile(source)
    if sound_file is not None:
        # The file has one position: read the header, look past it, then decode afresh.
        with sound_file:
            header = soundfile_header(sound_file, source)
        check_format(header.sample_rate, header.channels, name)
        check_limit(header.declared, max_seconds)
        check_held(source, name, header)
        sound_file = open_soundfile(source)
        assert sound_file is not None
        with sound_file:
            return decode_soundfile(sound_file, source, name, max_seconds, admitted, dtype, out)
    with open_av(source, name) as container:
        stream = audio_stream(container, source, name)
        return decode_av(container, stream, source, name, max_seconds, admitted, dtype, out)


def probe(
    source: AudioSource,
    filename: str = "",
    max_seconds: float | None = None,
    *,
    budget_seconds: float | None = None,
    deadline: float | None = None,
    cancel: threading.Event | None = None,
) -> AudioInfo:
    """Duration, rate and channels, from headers, checked against the audio the file holds.

    A bounded pass measures the audio (packet durations, decoding only when the container
    states none), stopping just past the declared length plus its slack or past `max_seconds`:
    more than declared is BadAudio naming both lengths; with no declared length, the measured
    length is returned (exact=False), or BadAudio past `max_seconds` or when the pass needs
    more than `budget_seconds`. A length declared over `max_seconds` is returned unmeasured,
    for the caller to refuse in its own words. `Cancelled` once `cancel` is set or the
    monotonic `deadline` passes (the caller went away). Truncation inside compressed data is
    found only by `decode`; a WAV header that declares more data than present is found here.
    """
    source_ = Source(source)
    require_content(source_.size)
    return probe_source(
        source_, named(filename), max_seconds, Budget(budget_seconds, deadline, cancel)
    )


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
