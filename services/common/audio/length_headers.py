"""Whether a file states its length at all, for formats whose libsndfile reader otherwise makes
one up: MP3 without a Xing/Info/VBRI frame (a guess from the bitrate) and Ogg whose last page
carries no granule position (the length of the page before, short of the audio after it)."""

from __future__ import annotations

import struct

from services.common.audio.source import Source

_MP3_LENGTH_TAGS = (b"Xing", b"Info", b"VBRI")
_OGG_TAIL_BYTES = 1 << 16  # Ogg pages are at most ~64 KiB
_NO_GRANULE = -1


def states_length(source: Source, fmt: str) -> bool:
    if fmt == "mp3":
        return _mp3_has_length_frame(source)
    if fmt == "ogg":
        return _ogg_last_granule(source) != _NO_GRANULE
    return True


def mp3_vbri_seconds(source: Source, rate: int) -> float | None:
    """The length a VBRI frame (Fraunhofer's encoder) states, which libsndfile ignores."""
    first_frame = _mp3_first_frame(source)
    tag = first_frame.find(b"VBRI")
    if tag < 0 or tag + 18 > len(first_frame) or rate <= 0:
        return None
    (frames,) = struct.unpack_from(">I", first_frame, tag + 14)
    samples_per_frame = 1152 if rate >= 32_000 else 576  # MPEG-1 layer III, else MPEG-2/2.5
    return frames * samples_per_frame / rate


def _mp3_has_length_frame(source: Source) -> bool:
    first_frame = _mp3_first_frame(source)
    return any(tag in first_frame for tag in _MP3_LENGTH_TAGS)


def _mp3_first_frame(source: Source) -> bytes:
    head = source.head(10)
    start = 0
    if head[:3] == b"ID3" and len(head) == 10:
        # ID3v2 size: four 7-bit bytes, not counting the 10-byte header.
        start = 10 + sum((byte & 0x7F) << (7 * (3 - i)) for i, byte in enumerate(head[6:10]))
    return source.read_at(start, 4096)


def _ogg_last_granule(source: Source) -> int | None:
    offset = max(0, source.size - _OGG_TAIL_BYTES)
    tail = source.read_at(offset, _OGG_TAIL_BYTES)
    page = tail.rfind(b"OggS")
    if page < 0 or page + 14 > len(tail):
        return None
    (granule,) = struct.unpack_from("<q", tail, page + 6)
    return int(granule)
