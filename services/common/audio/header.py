"""What a file's headers say before any decoding: format, rate, channels and declared length."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Header:
    format: str  # short name e.g. "wav", "flac", "ogg", "mp3", "mp4", "webm"
    sample_rate: int  # 0 when only decoding tells
    channels: int
    declared: float | None  # seconds the headers state; None = unknown or only estimated
    # Seconds the reader will deliver by its own count (libsndfile's frames), if it knows.
    present: float | None = None
