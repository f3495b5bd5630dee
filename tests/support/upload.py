"""Helpers of the UploadJob tests: a long real-speech WAV written straight to disk, raw request
streams (well-formed or not), and resident memory sampled while something runs."""

from __future__ import annotations

import struct
import threading
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import soxr

from bench import procmem
from devsupport import audio
from sayit.common.v1 import transcription_pb2 as tpb
from sayit.speech.v1 import speech_service_pb2 as pb
from services.common.audio import SAMPLE_RATE, decode

MIB = 1024 * 1024


def long_speech_wav(path: Path, size_bytes: int, rate: int = 8000) -> float:
    """A mono 16-bit WAV of `size_bytes` at `rate` made of real Korean speech repeated, written
    a block at a time; its length in seconds."""
    content, _, _ = audio.korean_long(60.0)
    speech = soxr.resample(decode(content), SAMPLE_RATE, rate)
    block = (np.clip(speech, -1.0, 1.0) * 32767.0).astype(np.int16).tobytes()
    data_bytes = (size_bytes - 44) // 2 * 2
    header = b"RIFF" + struct.pack("<I", 36 + data_bytes) + b"WAVE"
    header += b"fmt " + struct.pack("<IHHIIHH", 16, 1, 1, rate, rate * 2, 2, 16)
    header += b"data" + struct.pack("<I", data_bytes)
    with path.open("wb") as file:
        file.write(header)
        left = data_bytes
        while left:
            piece = block[: min(len(block), left)]
            file.write(piece)
            left -= len(piece)
    return data_bytes / 2 / rate


def header(filename: str = "", language: str = "", total_bytes: int = 0) -> pb.UploadJobRequest:
    return pb.UploadJobRequest(
        header=pb.UploadJobHeader(
            filename=filename,
            config=tpb.TranscriptionConfig(language_code=language),
            total_bytes=total_bytes,
        )
    )


def chunks(content: bytes, size: int = 64 * 1024) -> Iterator[pb.UploadJobRequest]:
    for start in range(0, len(content), size):
        yield pb.UploadJobRequest(audio_chunk=content[start : start + size])


def then_block(
    first: list[pb.UploadJobRequest], release: threading.Event
) -> Iterator[pb.UploadJobRequest]:
    """`first`, then nothing until `release` is set (a caller that stalls mid-upload)."""
    yield from first
    release.wait(60)


class PeakMemory:
    """VmRSS of some processes sampled every 50 ms on a thread, from start to stop: the
    baseline (first sample) and the peak, in MiB, per pid."""

    def __init__(self, pids: dict[str, int]) -> None:
        self._pids = pids
        self.baseline = {name: procmem.read(pid).rss_mib for name, pid in pids.items()}
        self.peak = dict(self.baseline)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> PeakMemory:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self._sample()

    def growth(self, name: str) -> float:
        return self.peak[name] - self.baseline[name]

    def _run(self) -> None:
        while not self._stop.wait(0.05):
            self._sample()

    def _sample(self) -> None:
        for name, pid in self._pids.items():
            self.peak[name] = max(self.peak[name], procmem.read(pid).rss_mib)
