"""The `BadAudio` errors of decoding and probing, worded so the caller learns what is wrong."""

from __future__ import annotations

from services.common.audio.types import SUPPORTED
from services.common.errors import BadAudio


def require_content(size: int) -> None:
    if not size:
        raise BadAudio("audio.content is empty")


def named(filename: str) -> str:
    return f" {filename!r}" if filename else ""


def undecodable(name: str, reason: str) -> BadAudio:
    return BadAudio(f"could not decode audio{name}: {reason}")


def damaged(seconds: float) -> BadAudio:
    return BadAudio(f"audio is truncated or damaged: decoding failed after {secs(seconds)} s")


def sniff_reason(content: bytes) -> str:
    """Why decoding failed: a known signature means damaged data, not an unsupported format.
    `content` is the file's first bytes (12 are enough)."""
    kind = _sniff(content)
    if kind is None:
        return f"not a recognised audio format (supported: {SUPPORTED})"
    return f"the data looks like {kind} but is damaged or truncated"


def _sniff(content: bytes) -> str | None:
    head = content[:12]
    if head[:4] == b"RIFF" and head[8:12] == b"WAVE":
        return "WAV"
    if head[:4] == b"fLaC":
        return "FLAC"
    if head[:4] == b"OggS":
        return "OGG"
    if head[4:8] == b"ftyp":
        return "MP4/M4A"
    if head[:4] == b"\x1a\x45\xdf\xa3":
        return "WebM/Matroska"
    if head[:3] == b"ID3":
        return "MP3"
    if len(head) >= 2 and head[0] == 0xFF and head[1] & 0xE0 == 0xE0:
        # Both are MPEG frame syncs; ADTS has layer bits 00, MP3 has layer III (01).
        return "AAC" if head[1] & 0x06 == 0 else "MP3"
    return None


def secs(seconds: float) -> str:
    return f"{seconds:.2f}".rstrip("0").rstrip(".")
