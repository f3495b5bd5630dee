"""The length a RIFF/WAVE header declares, which both readers hold the decoded audio to."""

from __future__ import annotations

import struct


def wav_declared_seconds(content: bytes) -> float | None:
    """Seconds of data the RIFF/WAVE header declares, or None if not a WAV or a placeholder."""
    if len(content) < 12 or content[:4] != b"RIFF" or content[8:12] != b"WAVE":
        return None
    position, byte_rate = 12, 0
    while position + 8 <= len(content):
        chunk_id, size = struct.unpack_from("<4sI", content, position)
        body = position + 8
        if chunk_id == b"fmt " and size >= 16 and body + 16 <= len(content):
            (byte_rate,) = struct.unpack_from("<I", content, body + 8)
        elif chunk_id == b"data":
            # Streaming writers leave 0 or ~4 GiB when they cannot seek back to fill the size in.
            if size == 0 or size >= 0x7FFF0000 or byte_rate == 0:
                return None
            return float(size / byte_rate)
        position = body + size + (size & 1)  # chunks are word-aligned
    return None
