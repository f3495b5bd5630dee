"""Probing and decoding through libsndfile (via soundfile): WAV, FLAC, OGG Vorbis/Opus and MP3."""

from __future__ import annotations

import io

import numpy as np
import soundfile as sf

from services.common.audio.messages import damaged, undecodable
from services.common.audio.sink import BLOCK_FRAMES, Sink, check_complete, check_limit, finish
from services.common.audio.types import AudioInfo
from services.common.audio.wav_header import wav_declared_seconds
from services.common.errors import BadAudio

# libsndfile reports this for lengths it cannot know.
_UNKNOWN_FRAMES = 1 << 62
_SOUNDFILE_FORMATS = {"WAVEX": "wav", "RF64": "wav"}


def open_soundfile(content: bytes) -> sf.SoundFile | None:
    """The file opened by libsndfile, or None when libsndfile does not read it (PyAV may)."""
    try:
        sound_file = sf.SoundFile(io.BytesIO(content))
    except (sf.SoundFileError, RuntimeError, TypeError, ValueError):
        return None
    if sound_file.frames == 0:
        # libsndfile also opens an OGG cut inside its first audio page as "0 frames"; PyAV then
        # either reads more or tells a damaged file from an empty one.
        sound_file.close()
        return None
    return sound_file


def _soundfile_declared_seconds(sound_file: sf.SoundFile, content: bytes) -> float | None:
    if sound_file.samplerate <= 0 or not 0 <= sound_file.frames < _UNKNOWN_FRAMES:
        return None
    seconds = sound_file.frames / sound_file.samplerate
    # libsndfile clips a WAV data length that overruns the file to the bytes present, which
    # would hide the truncation; the header itself says how much there should be.
    wav_seconds = wav_declared_seconds(content)
    return seconds if wav_seconds is None else max(seconds, wav_seconds)


def probe_soundfile(sound_file: sf.SoundFile, content: bytes, name: str) -> AudioInfo:
    fmt = _SOUNDFILE_FORMATS.get(sound_file.format, sound_file.format.lower())
    declared = _soundfile_declared_seconds(sound_file, content)
    if declared is None:
        seconds = _count_soundfile_seconds(sound_file, name)
        exact = False
    else:
        present = sound_file.frames / sound_file.samplerate
        check_complete(declared, present, failed=False)
        seconds, exact = declared, True
    if seconds <= 0:
        raise BadAudio("audio contains no samples")
    return AudioInfo(seconds, sound_file.samplerate, sound_file.channels, fmt, exact)


def _count_soundfile_seconds(sound_file: sf.SoundFile, name: str) -> float:
    if sound_file.samplerate <= 0:
        raise undecodable(name, "the header declares no sample rate")
    frames = 0
    block = np.empty((BLOCK_FRAMES, sound_file.channels), dtype=np.float32)
    try:
        while got := len(sound_file.read(out=block)):
            frames += got
    except (sf.SoundFileError, RuntimeError) as error:
        raise damaged(frames / sound_file.samplerate) from error
    return frames / sound_file.samplerate


def decode_soundfile(
    sound_file: sf.SoundFile,
    content: bytes,
    name: str,
    max_seconds: float | None,
    dtype: type[np.generic],
) -> np.ndarray:
    rate, channels = sound_file.samplerate, sound_file.channels
    if rate <= 0 or channels <= 0:
        raise undecodable(name, "the header declares no sample rate or channels")
    declared = _soundfile_declared_seconds(sound_file, content)
    check_limit(declared, max_seconds)
    sink = Sink(declared, max_seconds, dtype)
    # One block buffer reused for every read: libsndfile converts to float32 straight into it.
    block = np.empty((BLOCK_FRAMES, channels), dtype=np.float32)
    failed = False
    try:
        while len(got := sound_file.read(out=block)):
            sink.write(got[:, 0] if channels == 1 else got.mean(axis=1, dtype=np.float32), rate)
    except (sf.SoundFileError, RuntimeError):
        failed = True
    return finish(sink, declared, failed)
