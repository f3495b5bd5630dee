"""Probing an uploaded file from disk, never reading it into memory whole.

A shim over services.common.audio's readers until `audio.probe` takes a seekable file itself:
libsndfile and PyAV both read from a file object; the header checks that look at raw bytes
(WAV data size, format sniffing) only need the file's first bytes.
"""

from __future__ import annotations

from typing import BinaryIO

import av
import soundfile as sf

from services.common.audio import AudioInfo
from services.common.audio.ffmpeg_reader import audio_stream, probe_av
from services.common.audio.messages import named, sniff_reason, undecodable
from services.common.audio.soundfile_reader import probe_soundfile
from services.common.errors import BadAudio

# Enough for any RIFF header's fmt and data chunk headers and every format signature.
_HEAD_BYTES = 64 * 1024


def probe_file(file: BinaryIO, filename: str = "") -> AudioInfo:
    """As `services.common.audio.probe`, for an open file (left open, position undefined)."""
    name = named(filename)
    file.seek(0)
    head = file.read(_HEAD_BYTES)
    if not head:
        raise BadAudio("the upload holds no audio bytes")
    file.seek(0)
    sound_file = _open_soundfile(file)
    if sound_file is not None:
        with sound_file:
            return probe_soundfile(sound_file, head, name)
    file.seek(0)
    try:
        container = av.open(file, mode="r", metadata_errors="ignore")
    except (av.FFmpegError, OSError, ValueError) as error:
        raise undecodable(name, sniff_reason(head)) from error
    with container:
        stream = audio_stream(container, head, name)
        return probe_av(container, stream, head, name)


def _open_soundfile(file: BinaryIO) -> sf.SoundFile | None:
    try:
        sound_file = sf.SoundFile(file)
    except (sf.SoundFileError, RuntimeError, TypeError, ValueError):
        return None
    if sound_file.frames == 0:  # as open_soundfile: PyAV may read more
        sound_file.close()
        return None
    return sound_file
