"""A fake transcriber *process* whose process dies (os._exit) on audio that holds a marker,
the way a real one dies on audio that makes the engine run out of memory or crash: it takes
the call on (sending the accepted metadata a real transcriber sends once it holds a slot),
then exits without a word. Other audio gets tests.support.fake_transcriber's canned answer.
Every call it receives is appended to a file, so a test can count them across restarts.

    python -m tests.support.crashing_transcriber PORT CALLS_FILE
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path

import grpc

from sayit.transcriber.v1 import transcriber_service_pb2 as pb
from sayit.transcriber.v1 import transcriber_service_pb2_grpc as pb_grpc
from services.common.interceptors import ACCEPTED_KEY
from tests.support.fake_transcriber import FakeTranscriber

MARKER = b"CRASH-THE-ENGINE"


class CrashingTranscriber(FakeTranscriber):
    def __init__(self, calls_file: Path) -> None:
        super().__init__()
        self._calls_file = calls_file

    async def TranscribeStream(  # type: ignore[override]
        self, request: pb.TranscribeStreamRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[pb.TranscribeStreamResponse]:
        with self._calls_file.open("a") as calls:
            calls.write(f"{len(request.audio.content)}\n")
        if MARKER in request.audio.content:
            await context.send_initial_metadata(((ACCEPTED_KEY, "1"),))
            await asyncio.sleep(0.1)  # as if decoding
            os._exit(1)
        async for response in super().TranscribeStream(request, context):
            yield response


async def _main(port: int, calls_file: Path) -> None:
    server = grpc.aio.server()
    pb_grpc.add_TranscriberServiceServicer_to_server(CrashingTranscriber(calls_file), server)
    server.add_insecure_port(f"127.0.0.1:{port}")
    await server.start()
    await server.wait_for_termination()


class CrashingProcess:
    """Starts (and restarts, on the same port) the fake in a process of its own."""

    def __init__(self, port: int, calls_file: Path) -> None:
        self.port = port
        self.calls_file = calls_file
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def addr(self) -> str:
        return f"127.0.0.1:{self.port}"

    def calls(self) -> int:
        return len(self.calls_file.read_text().splitlines()) if self.calls_file.exists() else 0

    def start(self) -> CrashingProcess:
        self.process = subprocess.Popen(
            [sys.executable, "-m", __name__, str(self.port), str(self.calls_file)]
        )
        with grpc.insecure_channel(self.addr) as channel:
            grpc.channel_ready_future(channel).result(timeout=20)
        return self

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def wait_dead(self, within: float = 10.0) -> None:
        deadline = time.monotonic() + within
        while self.alive():
            assert time.monotonic() < deadline, "the fake transcriber did not die"
            time.sleep(0.02)

    def stop(self) -> None:
        if self.alive():
            assert self.process is not None
            self.process.kill()
            self.process.wait(10)


if __name__ == "__main__":
    asyncio.run(_main(int(sys.argv[1]), Path(sys.argv[2])))
