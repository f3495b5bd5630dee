"""Audio files whose headers lie about their length, or declare none, built in memory for the
tests of `services.common.audio`'s length checks: each encodes real audio, then patches the one
header field that states the length (fixing the checksum where the format has one)."""

from __future__ import annotations

import io
import struct

import numpy as np
import soundfile as sf

from tests.support.encode import av_bytes

RATE = 16_000


def tone(seconds: float, rate: int = RATE) -> np.ndarray:
    """A quiet 440 Hz tone: cheap to encode, never silence (which some codecs drop)."""
    t = np.arange(int(seconds * rate), dtype=np.float32) / rate
    return (0.1 * np.sin(2 * np.pi * 440.0 * t)).astype(np.float32)


def sf_blocks(signal: np.ndarray, fmt: str, subtype: str, rate: int = RATE) -> bytes:
    """libsndfile in one-second writes (one long Vorbis write crashes libsndfile 1.2)."""
    buffer = io.BytesIO()
    with sf.SoundFile(buffer, "w", rate, 1, format=fmt, subtype=subtype) as out:
        for start in range(0, len(signal), rate):
            out.write(signal[start : start + rate])
    return buffer.getvalue()


# --- WAV -----------------------------------------------------------------------------------


def wav_data_size(content: bytes, seconds: float | None) -> bytes:
    """The data chunk's size set to `seconds` of audio (None: 0, the streaming placeholder)."""
    position = content.index(b"data")
    (byte_rate,) = struct.unpack_from("<I", content, content.index(b"fmt ") + 16)
    size = 0 if seconds is None else int(seconds * byte_rate)
    return content[: position + 4] + struct.pack("<I", size) + content[position + 8 :]


def wav_rate(content: bytes, rate: int, channels: int | None = None) -> bytes:
    """The fmt chunk's sample rate (and channel count) set to any value, however absurd."""
    fmt = content.index(b"fmt ") + 8
    patched = bytearray(content)
    struct.pack_into("<I", patched, fmt + 4, rate)
    if channels is not None:
        struct.pack_into("<H", patched, fmt + 2, channels)
    return bytes(patched)


# --- FLAC ----------------------------------------------------------------------------------


def flac_total_samples(content: bytes, samples: int) -> bytes:
    """STREAMINFO's 36-bit total sample count set (0 = unknown, as streaming encoders leave it)."""
    assert content[:4] == b"fLaC"
    (packed,) = struct.unpack_from(">Q", content, 18)  # rate:20 channels:3 bits:5 total:36
    packed = (packed & ~((1 << 36) - 1)) | samples
    return content[:18] + struct.pack(">Q", packed) + content[26:]


# --- Ogg -----------------------------------------------------------------------------------


def _ogg_crc(page: bytes) -> int:
    crc = 0
    for byte in page:
        crc ^= byte << 24
        for _ in range(8):
            crc = ((crc << 1) ^ 0x04C11DB7) if crc & 0x80000000 else crc << 1
            crc &= 0xFFFFFFFF
    return crc


def _ogg_pages(content: bytes) -> list[int]:
    pages, position = [], 0
    while (position := content.find(b"OggS", position)) >= 0:
        pages.append(position)
        position += 4
    return pages


def ogg_last_granule(content: bytes, granule: int) -> bytes:
    """The last page's granule position (where readers take the length from) set, CRC fixed.
    -1 means "no packet ends on this page": the length is then unknown."""
    return _ogg_set_granule(content, _ogg_pages(content)[-1], granule)


def _ogg_set_granule(content: bytes, start: int, granule: int) -> bytes:
    patched = bytearray(content)
    struct.pack_into("<q", patched, start + 6, granule)
    segments = patched[start + 26]
    body = sum(patched[start + 27 : start + 27 + segments])
    end = start + 27 + segments + body
    struct.pack_into("<I", patched, start + 22, 0)
    struct.pack_into("<I", patched, start + 22, _ogg_crc(bytes(patched[start:end])))
    return bytes(patched)


# --- MP3 -----------------------------------------------------------------------------------


def mp3(signal: np.ndarray, xing: bool = True) -> bytes:
    """LAME through FFmpeg, with or without the Xing/Info frame that states the length."""
    return av_bytes(signal, RATE, "mp3", "libmp3lame", {"write_xing": "1" if xing else "0"})


def mp3_xing_frames(content: bytes, frames: int) -> bytes:
    """The Xing/Info header's frame count set (the length readers trust)."""
    tag = max(content.find(b"Xing"), content.find(b"Info"))
    assert tag > 0, "no Xing/Info header"
    (flags,) = struct.unpack_from(">I", content, tag + 4)
    assert flags & 1, "the Xing header carries no frame count"
    return content[: tag + 8] + struct.pack(">I", frames) + content[tag + 12 :]


def mp3_vbri_frames(content: bytes, frames: int) -> bytes:
    """The Xing frame turned into a VBRI frame (as Fraunhofer's encoder writes) stating
    `frames`: the tag 32 bytes past the frame header, then version, delay, quality, bytes,
    frames and an empty table of contents."""
    tag = max(content.find(b"Xing"), content.find(b"Info"))
    frame = next(
        i for i in range(tag, -1, -1) if content[i] == 0xFF and content[i + 1] & 0xE0 == 0xE0
    )
    vbri = b"VBRI" + struct.pack(">HHHIIHHHH", 1, 576, 75, len(content), frames, 0, 1, 2, 1)
    patched = bytearray(content)
    patched[tag : tag + 4] = bytes(4)
    patched[frame + 36 : frame + 36 + len(vbri)] = vbri
    return bytes(patched)


def mp3_frames_for(seconds: float, rate: int = RATE) -> int:
    samples_per_frame = 1152 if rate >= 32_000 else 576
    return round(seconds * rate / samples_per_frame)


# --- MP4/M4A -------------------------------------------------------------------------------


def mp4_duration(content: bytes, seconds: float) -> bytes:
    """The movie's and every track's duration (mvhd, mdhd) set to `seconds`, each in its own
    timescale; the sample tables, which say what is really there, are left alone."""
    patched = bytearray(content)
    for box in (b"mvhd", b"mdhd"):
        position = content.find(box)
        while position >= 0:
            version = patched[position + 4]
            timescale_at = position + 8 + (16 if version == 1 else 8)
            (timescale,) = struct.unpack_from(">I", patched, timescale_at)
            layout = ">Q" if version == 1 else ">I"
            struct.pack_into(layout, patched, timescale_at + 4, int(seconds * timescale))
            position = content.find(box, position + 4)
    return bytes(patched)


# --- WebM ----------------------------------------------------------------------------------


def webm_duration(content: bytes, seconds: float) -> bytes:
    """The Segment Info Duration (EBML 0x4489, a float in TimecodeScale units, ms) set."""
    position = content.index(b"\x44\x89")
    size = content[position + 2]
    if size == 0x88:
        value = struct.pack(">d", seconds * 1000.0)
    else:
        assert size == 0x84
        value = struct.pack(">f", seconds * 1000.0)
    return content[: position + 3] + value + content[position + 3 + len(value) :]


def webm(signal: np.ndarray, live: bool = False) -> bytes:
    """Opus in WebM; `live` writes no duration (as a browser's MediaRecorder does)."""
    return av_bytes(signal, RATE, "webm", "libopus", {"live": "1"} if live else None)


def ogg_no_granules(content: bytes) -> bytes:
    """Every audio page's granule position set to -1 (as a cut live stream can leave them):
    no page states where the audio ends."""
    patched = content
    pages = _ogg_pages(content)
    for start in pages:
        # Header pages carry granule 0; every audio page a position past it.
        if struct.unpack_from("<q", content, start + 6)[0] > 0:
            patched = _ogg_set_granule(patched, start, -1)
    return patched
