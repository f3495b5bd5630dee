"""UploadJob's request stream from a file: the header, then the file in chunks read as they are
sent, so a multi-gigabyte file costs the client one chunk of memory."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

from sayit.common.v1 import transcription_pb2 as tpb
from sayit.speech.v1 import speech_service_pb2 as pb
from services.client.inputs import AudioInput

MIB = 1024 * 1024
CHUNK_BYTES = 1 * MIB
# Files above this go by UploadJob rather than inline in one message.
DEFAULT_UPLOAD_THRESHOLD_BYTES = 16 * MIB


def is_large_file(audio: AudioInput, threshold: int) -> bool:
    """True for a file path whose file is over `threshold` bytes (bytes are sent inline)."""
    return not isinstance(audio, bytes) and os.path.getsize(audio) > threshold


def upload_requests(
    audio: AudioInput,
    config: tpb.TranscriptionConfig,
    *,
    filename: str = "",
    idempotency_key: str = "",
    chunk_bytes: int = CHUNK_BYTES,
) -> Iterator[pb.UploadJobRequest]:
    """The header (with the file's size), then its chunks in order."""
    if isinstance(audio, bytes):
        size, name = len(audio), filename
    else:
        path = Path(audio)
        size, name = path.stat().st_size, filename or path.name
    yield pb.UploadJobRequest(
        header=pb.UploadJobHeader(
            filename=name, config=config, idempotency_key=idempotency_key, total_bytes=size
        )
    )
    if isinstance(audio, bytes):
        view = memoryview(audio)
        for start in range(0, len(view), chunk_bytes):
            yield pb.UploadJobRequest(audio_chunk=bytes(view[start : start + chunk_bytes]))
        return
    with open(audio, "rb") as file:
        while chunk := file.read(chunk_bytes):
            yield pb.UploadJobRequest(audio_chunk=chunk)
