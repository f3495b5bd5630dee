"""A small fake TranscriberService for tests of the scheduler's rules: a gRPC server on a free
port that streams canned segments, refuses, fails or waits, as the test scripts it. It is never
used where a test is about transcription itself (those run the real model)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import grpc
from google.rpc import status_pb2

from sayit.common.v1 import streaming_pb2 as spb
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
    # Live sessions (StreamTranscribe): each `utterance_seconds` of audio received is one
    # utterance, the next of `texts` (round and round), sent in the plan's order; `refuse` and
    # `fail_after` (after the first segment) apply to them too.
    utterance_seconds: float = 1.0


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
    setups: list[pb.StreamTranscribeSetup] = field(default_factory=list)
    audio_bytes: int = 0
    sessions_cancelled: int = 0
    sessions_active: int = 0

    async def StreamTranscribe(
        self,
        requests: AsyncIterator[pb.StreamTranscribeRequest],
        context: grpc.aio.ServicerContext,
    ) -> AsyncIterator[pb.StreamTranscribeResponse]:
        """A live session as the plan has it: setup first, ACCEPTED_KEY once taken, then per
        utterance STARTED, interim (if asked), ENDED, final, segment; `summary` after the
        half-close."""
        script = self.script
        iterator = aiter(requests)
        first = await anext(iterator, None)
        if first is None or not first.HasField("setup"):
            await _abort(context, grpc.StatusCode.INVALID_ARGUMENT, "setup first", raw=False)
        assert first is not None
        setup = first.setup
        self.setups.append(setup)
        if script.refuse is not None:
            await _abort(context, *script.refuse, raw=script.raw_status)
        await context.send_initial_metadata((("x-sayit-accepted", "1"),))
        config = setup.streaming_config
        width = 4 if config.encoding == spb.AUDIO_ENCODING_FLOAT32 else 2
        per_second = width * config.sample_rate_hertz * max(1, config.audio_channel_count)
        self.sessions_active += 1
        self.started.set()
        received, utterance, language = 0, 0, config.config.language_code or "ko"
        summarized = False
        try:
            async for request in iterator:
                if script.release is not None:
                    await script.release.wait()
                received += len(request.audio_content)
                while received / per_second >= (utterance + 1) * script.utterance_seconds:
                    utterance += 1
                    start = (utterance - 1) * script.utterance_seconds
                    end = utterance * script.utterance_seconds
                    text = script.texts[(utterance - 1) % len(script.texts)]
                    for response in _utterance(utterance, start, end, text, language, config):
                        yield response
                    if script.fail_after is not None:
                        await _abort(context, *script.fail_after, raw=script.raw_status)
            yield pb.StreamTranscribeResponse(
                summary=pb.StreamTranscribeSummary(
                    audio_seconds=received / per_second,
                    language_code=language,
                    language_probability=1.0,
                    model="fake",
                    preset=config.config.preset,
                    processing_seconds=0.01,
                )
            )
            summarized = True
        finally:
            if not summarized:
                self.sessions_cancelled += 1
            self.audio_bytes += received
            self.sessions_active -= 1

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


def _utterance(
    n: int,
    start: float,
    end: float,
    text: str,
    language: str,
    config: spb.StreamingRecognitionConfig,
) -> list[pb.StreamTranscribeResponse]:
    def event(kind: int, time: float) -> pb.StreamTranscribeResponse:
        speech = spb.SpeechEvent(type=kind, time_seconds=time, utterance=n)  # type: ignore[arg-type]
        return pb.StreamTranscribeResponse(speech_event=speech)

    def result(words: str, final: bool) -> pb.StreamTranscribeResponse:
        return pb.StreamTranscribeResponse(
            result=spb.StreamingRecognitionResult(
                text=words,
                is_final=final,
                stability=1.0 if final else 0.5,
                start_seconds=start,
                end_seconds=end,
                utterance=n,
                language_code=language,
            )
        )

    out = [event(spb.SPEECH_EVENT_TYPE_SPEECH_STARTED, start)]
    if config.interim_results:
        out.append(result(text[: max(1, len(text) // 2)], False))
    out += [event(spb.SPEECH_EVENT_TYPE_SPEECH_ENDED, end), result(text, True)]
    segment = tpb.Segment(id=n, start_seconds=start, end_seconds=end, text=text)
    out.append(pb.StreamTranscribeResponse(segment=segment))
    return out


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
