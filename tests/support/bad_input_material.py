"""Audio and bytes the bad-input corpus is made of: the cheetah clip at any rate, a noisy tone,
WAV headers that lie, hostile text, noise and a zip bomb."""

from __future__ import annotations

import functools
import io
import struct
import zipfile

import numpy as np

from devsupport import evalset
from services.common.audio import decode
from tests.support.encode import resample, sf_bytes

MIB = 1 << 20


@functools.cache
def cheetah() -> np.ndarray:
    """'Today only platforms one and three are used.' (4.5 s), 16 kHz mono float32."""
    return decode(evalset.clip("en_pv_cheetah_test").read())


def at(rate: int) -> np.ndarray:
    return resample(cheetah(), rate)


@functools.cache
def noisy_tone(seconds: float = 4.0, rate: int = 44_100) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    rng = np.random.default_rng(7)
    return (0.5 * np.sin(2 * np.pi * 440 * t) + 0.1 * rng.standard_normal(len(t))).astype(
        np.float32
    )


def wav_with_data_size(declared_bytes: int, present_bytes: int, rate: int = 16_000) -> bytes:
    fmt = struct.pack("<HHIIHH", 1, 1, rate, rate * 2, 2, 16)
    data = (np.sin(np.arange(present_bytes // 2) * 0.1) * 10_000).astype("<i2").tobytes()
    body = b"WAVE" + b"fmt " + struct.pack("<I", 16) + fmt + b"data"
    body += struct.pack("<I", declared_bytes) + data
    return b"RIFF" + struct.pack("<I", len(body)) + body


def random_text(length: int, seed: int) -> str:
    """Printable ASCII, Hangul, CJK and emoji, as a hostile caller would send."""
    rng = np.random.default_rng(seed)
    ranges = [(0x20, 0x7E), (0xAC00, 0xD7A3), (0x4E00, 0x9FFF), (0x1F300, 0x1F5FF)]
    return "".join(chr(int(rng.integers(*ranges[int(rng.integers(4))]))) for _ in range(length))


def half(content: bytes) -> bytes:
    return content[: len(content) // 2]


def noise_wav(seconds: float) -> bytes:
    rng = np.random.default_rng(11)
    return sf_bytes(
        (rng.standard_normal(int(seconds * 8000)) * 0.05).astype(np.float32), 8000, "WAV", "PCM_16"
    )


def zip_of_zeros() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("audio.wav", bytes(50 * MIB))
    return buffer.getvalue()
