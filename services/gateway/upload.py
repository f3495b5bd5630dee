"""UploadJob at the gateway: CreateJob for files of any size, with the audio in a stream.

The header comes first; the audio chunks are spooled to an unnamed temporary file (bounded by
SAYIT_MAX_UPLOAD_BYTES, deleted however the call ends), the file is probed from disk, the
tenant charged, and the file streamed on to the scheduler in chunks. Memory per upload is a few
chunks, whatever the file's size. The caller was authenticated from metadata before the first
message was read (services.gateway.interceptor).
"""

from __future__ import annotations

import asyncio
import tempfile
from collections.abc import AsyncIterator
from typing import BinaryIO

from sayit.common.v1 import transcription_pb2 as tpb
from sayit.scheduler.v1 import scheduler_service_pb2 as spb
from sayit.speech.v1 import speech_service_pb2 as pb
from services.common.errors import InvalidArgument, QuotaViolation, ResourceExhausted
from services.gateway import convert

MIB = 1024 * 1024
# Largest audio_chunk accepted, and the size of the chunks sent on to the scheduler.
MAX_CHUNK_BYTES = 4 * MIB
FORWARD_CHUNK_BYTES = 1 * MIB
# File reads and writes go to the loop's default executor, not the probe threads.


async def read_header(requests: AsyncIterator[pb.UploadJobRequest]) -> pb.UploadJobHeader:
    """The first message, which must be the header."""
    try:
        first = await anext(aiter(requests))
    except StopAsyncIteration:
        first = None
    if first is None or first.WhichOneof("part") != "header":
        raise InvalidArgument(
            "the first UploadJobRequest must be the header (filename, config, "
            "idempotency_key), then the audio in audio_chunk messages",
            field="header",
        )
    return first.header


def check_header(header: pb.UploadJobHeader, model: str, max_bytes: int) -> tpb.TranscriptionConfig:
    """The header's checks that CreateJob makes on its request; the effective config."""
    convert.validate_idempotency_key(header.idempotency_key)
    if header.total_bytes < 0:
        raise InvalidArgument(
            f"total_bytes must be the file's size or 0; got {header.total_bytes}",
            field="header.total_bytes",
        )
    if header.total_bytes > max_bytes:
        raise too_large(header.total_bytes, max_bytes)
    return convert.validate_submission(header.filename, header.config, model)


def too_large(size: int, max_bytes: int) -> ResourceExhausted:
    return ResourceExhausted(
        f"the upload is {convert.size(size)} or more; the limit is {convert.size(max_bytes)} "
        "(SAYIT_MAX_UPLOAD_BYTES): send it compressed (FLAC, Opus, MP3) or split it",
        violations=[QuotaViolation("request", f"upload bytes: {max_bytes}")],
    )


async def spool(
    requests: AsyncIterator[pb.UploadJobRequest],
    file: BinaryIO,
    max_bytes: int,
    declared: int,
) -> int:
    """Write the audio chunks to `file` as they come; their total size."""
    loop = asyncio.get_running_loop()
    total = 0
    async for request in requests:
        if request.WhichOneof("part") != "audio_chunk":
            raise InvalidArgument(
                "the header was sent twice: send it once, first, then only audio_chunk messages",
                field="header",
            )
        chunk = request.audio_chunk
        if len(chunk) > MAX_CHUNK_BYTES:
            raise InvalidArgument(
                f"an audio_chunk is {convert.size(len(chunk))}; the limit is "
                f"{convert.size(MAX_CHUNK_BYTES)} per message (1 MiB is a good size)",
                field="audio_chunk",
            )
        total += len(chunk)
        if total > max_bytes:
            raise too_large(total, max_bytes)
        await loop.run_in_executor(None, file.write, chunk)
    if total == 0:
        raise InvalidArgument(
            "the upload holds no audio: send the file's bytes in audio_chunk messages after "
            "the header",
            field="audio_chunk",
        )
    if declared and total != declared:
        raise InvalidArgument(
            f"the header's total_bytes is {declared} but {total} bytes arrived: the upload was "
            "cut short or total_bytes is wrong",
            field="header.total_bytes",
        )
    await loop.run_in_executor(None, file.flush)
    return total


async def forward(
    header: spb.UploadJobHeader, file: BinaryIO
) -> AsyncIterator[spb.UploadJobRequest]:
    """The scheduler's UploadJob stream: the header, then the file in chunks read as sent."""
    yield spb.UploadJobRequest(header=header)
    loop = asyncio.get_running_loop()
    await loop.run_in_executor(None, file.seek, 0)
    while chunk := await loop.run_in_executor(None, file.read, FORWARD_CHUNK_BYTES):
        yield spb.UploadJobRequest(audio_chunk=chunk)


def temporary_file(directory: str) -> BinaryIO:
    """An unnamed file (no path to clean up: it is gone once closed, or if the process dies)."""
    return tempfile.TemporaryFile(dir=directory or None)
