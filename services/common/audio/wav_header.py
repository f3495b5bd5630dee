"""What a RIFF/WAVE header declares: the length both readers hold the decoded audio to, and
audio bytes past the declared data (which libsndfile and FFmpeg both silently skip)."""

from __future__ import annotations

import struct
from dataclasses import dataclass

from services.common.audio.source import Source


@dataclass(frozen=True)
class WavData:
    start: int  # offset of the first audio byte
    size: int  # bytes the header declares
    byte_rate: int

    @property
    def seconds(self) -> float:
        return self.size / self.byte_rate


def wav_data(source: Source) -> WavData | None:
    """The data chunk a RIFF/WAVE header declares, or None if not a WAV or a placeholder."""
    head = source.head(12)
    if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"WAVE":
        return None
    position, byte_rate = 12, 0
    while position + 8 <= source.size:
        chunk_id, size = struct.unpack("<4sI", source.read_at(position, 8))
        body = position + 8
        if chunk_id == b"fmt " and size >= 16 and body + 16 <= source.size:
            (byte_rate,) = struct.unpack("<I", source.read_at(body + 8, 4))
        elif chunk_id == b"data":
            # Streaming writers leave 0 or ~4 GiB when they cannot seek back to fill the size in.
            if size == 0 or size >= 0x7FFF0000 or byte_rate == 0:
                return None
            return WavData(body, size, byte_rate)
        position = body + size + (size & 1)  # chunks are word-aligned
    return None


def wav_declared_seconds(source: Source) -> float | None:
    data = wav_data(source)
    return None if data is None else data.seconds


def wav_undeclared_seconds(source: Source) -> float:
    """Seconds of bytes after the declared data that are not well-formed chunks (LIST, id3...):
    audio the header does not count, as when a writer left a wrong data size."""
    data = wav_data(source)
    if data is None:
        return 0.0
    position = data.start + data.size + (data.size & 1)
    while position + 8 <= source.size:
        chunk_id, size = struct.unpack("<4sI", source.read_at(position, 8))
        if not _is_chunk_id(chunk_id) or position + 8 + size > source.size:
            break
        position += 8 + size + (size & 1)
    if position >= source.size - 1:  # at most a padding byte left
        return 0.0
    return (source.size - position) / data.byte_rate


def _is_chunk_id(chunk_id: bytes) -> bool:
    # Chunk ids are four printable ASCII characters ("LIST", "id3 ", "bext"); audio samples
    # almost never are.
    return all(0x20 <= byte < 0x7F for byte in chunk_id) and chunk_id.strip() != b""
