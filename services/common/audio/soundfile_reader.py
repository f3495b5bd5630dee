"""Probing and decoding through libsndfile (via soundfile): WAV, FLAC, OGG Vorbis/Opus and MP3."""

from __future__ import annotations

from typing import BinaryIO

import numpy as np
import soundfile as sf

from services.common.audio.bounds import (
    Budget,
    allowed,
    check_format,
    hold_to,
    longer_than_declared,
)
from services.common.audio.header import Header
from services.common.audio.length_headers import mp3_vbri_seconds, states_length
from services.common.audio.messages import damaged, undecodable
from services.common.audio.pcm_file import PcmFile
from services.common.audio.sink import BLOCK_FRAMES, Sink, check_limit, finish
from services.common.audio.source import Source
from services.common.audio.wav_header import wav_declared_seconds, wav_undeclared_seconds

# libsndfile reports this for lengths it cannot know.
_UNKNOWN_FRAMES = 1 << 62
_SOUNDFILE_FORMATS = {"WAVEX": "wav", "RF64": "wav"}


def open_soundfile(source: Source) -> sf.SoundFile | None:
    """The file opened by libsndfile, or None when libsndfile does not read it (PyAV may)."""
    try:
        sound_file = sf.SoundFile(source.view())
    except (sf.SoundFileError, RuntimeError, TypeError, ValueError):
        return None
    if sound_file.frames == 0:
        # libsndfile also opens an OGG cut inside its first audio page as "0 frames"; PyAV then
        # either reads more or tells a damaged file from an empty one.
        sound_file.close()
        return None
    if (sound_file.format == "FLAC" and sound_file.frames >= _UNKNOWN_FRAMES) or (
        sound_file.format == "OGG" and not states_length(source, "ogg")
    ):
        # libsndfile fails near the end of a FLAC whose STREAMINFO states no sample count (the
        # last second is lost as "damaged") and stops an Ogg at the last granule position it
        # finds; FFmpeg reads both whole.
        sound_file.close()
        return None
    return sound_file


def soundfile_header(sound_file: sf.SoundFile, source: Source) -> Header:
    fmt = _SOUNDFILE_FORMATS.get(sound_file.format, sound_file.format.lower())
    declared = _declared_seconds(sound_file, source, fmt)
    known = sound_file.samplerate > 0 and 0 <= sound_file.frames < _UNKNOWN_FRAMES
    present = sound_file.frames / sound_file.samplerate if known else None
    return Header(fmt, sound_file.samplerate, sound_file.channels, declared, present)


def _declared_seconds(sound_file: sf.SoundFile, source: Source, fmt: str) -> float | None:
    if sound_file.samplerate <= 0 or not 0 <= sound_file.frames < _UNKNOWN_FRAMES:
        return None
    if not states_length(source, fmt):
        return None  # libsndfile's figure is a guess
    seconds = sound_file.frames / sound_file.samplerate
    if fmt == "mp3":
        vbri = mp3_vbri_seconds(source, sound_file.samplerate)
        seconds = seconds if vbri is None else vbri
    # libsndfile clips a WAV data length that overruns the file to the bytes present, which
    # would hide the truncation; the header itself says how much there should be.
    wav_seconds = wav_declared_seconds(source)
    return seconds if wav_seconds is None else max(seconds, wav_seconds)


def soundfile_seconds(sound_file: sf.SoundFile, name: str, stop_at: float, budget: Budget) -> float:
    """Seconds libsndfile decodes, dropped as read, up to just past `stop_at` (for files PyAV
    cannot open)."""
    frames, rate = 0, sound_file.samplerate
    block = np.empty((BLOCK_FRAMES, sound_file.channels), dtype=np.float32)
    try:
        while got := len(sound_file.read(out=block)):
            budget.check()
            frames += got
            if frames / rate > stop_at:
                break
    except (sf.SoundFileError, RuntimeError) as error:
        raise damaged(frames / rate) from error
    return frames / rate


def decode_soundfile(
    sound_file: sf.SoundFile,
    source: Source,
    name: str,
    max_seconds: float | None,
    admitted: float | None,
    dtype: type[np.generic],
    out: BinaryIO | None = None,
) -> np.ndarray | PcmFile:
    rate, channels = sound_file.samplerate, sound_file.channels
    if rate <= 0 or channels <= 0:
        raise undecodable(name, "the header declares no sample rate or channels")
    check_format(rate, channels, name)
    header = soundfile_header(sound_file, source)
    declared = header.declared
    check_limit(declared, max_seconds)
    if declared is not None and declared + wav_undeclared_seconds(source) > allowed(declared):
        raise longer_than_declared(declared)  # libsndfile would stop at the declared data
    sink = Sink(declared, max_seconds, dtype, hold_to(declared, admitted), out)
    # One block buffer reused for every read: libsndfile converts to float32 straight into it.
    block = np.empty((BLOCK_FRAMES, channels), dtype=np.float32)
    failed = False
    try:
        while len(got := sound_file.read(out=block)):
            sink.write(got[:, 0] if channels == 1 else got.mean(axis=1, dtype=np.float32), rate)
    except (sf.SoundFileError, RuntimeError):
        failed = True
    return finish(sink, declared, failed)
