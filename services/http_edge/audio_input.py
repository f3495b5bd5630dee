"""An uploaded file (FastAPI's UploadFile, spooled to disk past 1 MiB by Starlette) sent to the
gateway: whole in one message when small, else streamed to UploadJob chunk by chunk so the
edge never holds a large file whole in memory."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator

from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile
from starlette.requests import Request

from sayit.speech.v1 import speech_service_pb2 as pb

CHUNK_BYTES = 1024 * 1024


async def size_of(file: UploadFile) -> int:
    """The file's size in bytes (Starlette counts it while parsing; else measured)."""
    if file.size is not None:
        return file.size

    def measure() -> int:
        file.file.seek(0, os.SEEK_END)
        size = file.file.tell()
        file.file.seek(0)
        return size

    return await run_in_threadpool(measure)


async def read_whole(file: UploadFile) -> bytes:
    await file.seek(0)
    return await file.read()


async def chunks(file: UploadFile, chunk_bytes: int = CHUNK_BYTES) -> AsyncIterator[bytes]:
    """The file's bytes from the start, at most `chunk_bytes` at a time."""
    await file.seek(0)
    while True:
        chunk = await file.read(chunk_bytes)
        if not chunk:
            return
        yield chunk


async def body_chunks(request: Request) -> AsyncIterator[bytes]:
    """A raw request body as it arrives, in pieces of CHUNK_BYTES (the last one shorter)."""
    buffer = bytearray()
    async for data in request.stream():
        buffer += data
        while len(buffer) >= CHUNK_BYTES:
            yield bytes(buffer[:CHUNK_BYTES])
            del buffer[:CHUNK_BYTES]
    if buffer:
        yield bytes(buffer)


async def upload_requests(
    header: pb.UploadJobHeader, pieces: AsyncIterator[bytes]
) -> AsyncIterator[pb.UploadJobRequest]:
    """UploadJob's request stream: the header, then the audio piece by piece (`chunks` of a
    spooled file, or a raw body as it arrives)."""
    yield pb.UploadJobRequest(header=header)
    async for piece in pieces:
        yield pb.UploadJobRequest(audio_chunk=piece)
