"""A small fake TranscriberService for tests of the scheduler's rules: a gRPC server on a free
port that streams canned segments, refuses, fails or waits, as the test scripts it. It is never
used where a test is about transcription itself (those run the real model)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import grpc
from google.rpc import status_pb2

from sayit.common.v1 import transcription_pb2 as tpb
from sayit.transcriber.v1 import transcriber_service_pb2 as pb
from sayit.transcriber.v1 import transcriber_service_pb2_grpc as pb_grpc


@dataclass
class Script:
    """What the next calls do: stream `texts` as segments spread over the audio (then the
    transcript), or first wait for `release`, or refuse with `refuse` (code, details) before
    doing anything, or fail with `fail_after` after its first segment. With `raw_status` those
    statuses come as gRPC itself would make them (a reset connection, a proxy): without the
    google.rpc.Status trailer a SayIt service adds."""

    texts: tuple[str, ...] = ("안녕하세요.", "반갑습니다.")
    audio_seconds: float = 8.0
    refuse: tuple[grpc.StatusCode, str] | None = None
    fail_after: tuple[grpc.StatusCode, str] | None = None
    release: asyncio.Event | None = None
    raw_status: bool = False


async def _abort(
    context: grpc.aio.ServicerContext, code: grpc.StatusCode, details: str, *, raw: bool
) -> None:
    """Fail as a SayIt service does: with the google.rpc.Status trailer its interceptor adds
    (a status without one is taken for gRPC's own and its text is not passed on); `raw`:
    without it."""
    if raw:
        await context.abort(code, details)
    rich = status_pb2.Status(code=code.value[0], message=details)
    await context.abort(code, details, (("grpc-status-details-bin", rich.SerializeToString()),))


@dataclass
class FakeTranscriber(pb_grpc.TranscriberServiceServicer):
    script: Script = field(default_factory=Script)
    calls: list[pb.TranscribeStreamRequest] = field(default_factory=list)
    cancelled: int = 0
    started: asyncio.Event = field(default_factory=asyncio.Event)

    async def TranscribeStream(
        self, request: pb.TranscribeStreamRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[pb.TranscribeStreamResponse]:
        self.calls.append(request)
        script = self.script
        if script.refuse is not None:
            await _abort(context, *script.refuse, raw=script.raw_status)
        self.started.set()
        total = script.audio_seconds
        yield _progress(0.0, total)
        try:
            if script.release is not None:
                await script.release.wait()
            segments = []
            for n, text in enumerate(script.texts):
                start, end = total * n / len(script.texts), total * (n + 1) / len(script.texts)
                segment = tpb.Segment(id=n, start_seconds=start, end_seconds=end, text=text)
                segments.append(segment)
                yield pb.TranscribeStreamResponse(segment=segment)
                yield _progress(end, total)
                if script.fail_after is not None:
                    await _abort(context, *script.fail_after, raw=script.raw_status)
        except asyncio.CancelledError:
            self.cancelled += 1
            raise
        yield pb.TranscribeStreamResponse(
            transcript=tpb.Transcript(
                text=" ".join(script.texts),
                language_code=request.config.language_code or "ko",
                language_probability=1.0,
                audio_duration_seconds=total,
                segments=segments,
                model="fake",
                processing_seconds=0.01,
            )
        )


def _progress(done: float, total: float) -> pb.TranscribeStreamResponse:
    return pb.TranscribeStreamResponse(
        progress=pb.TranscribeProgress(
            fraction=done / total if total else 1.0,
            audio_seconds_done=done,
            audio_seconds_total=total,
        )
    )


async def serve(fake: FakeTranscriber) -> tuple[grpc.aio.Server, str]:
    """Serve `fake` on a free loopback port; (server, address)."""
    server = grpc.aio.server()
    pb_grpc.add_TranscriberServiceServicer_to_server(fake, server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    return server, f"127.0.0.1:{port}"
