"""A small real SpeechService implementing only `StreamingRecognize`, for the Python client's and
the CLI's live tests: a gRPC server on a free port that answers as the test scripts it (the
contract's order: job name first, then per utterance started, interims, ended, final), refuses
with SayIt's own statuses (services.common.status: RetryInfo and friends), and records what the
client sent and when. It is about the clients, never about recognition."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from concurrent import futures
from dataclasses import dataclass, field

import grpc

from sayit.common.v1 import streaming_pb2 as spb
from sayit.speech.v1 import speech_service_pb2 as pb
from sayit.speech.v1 import speech_service_pb2_grpc as pb_grpc
from services.common.errors import InvalidArgument, SayItError
from services.common.status import to_status

JOB = "jobs/0123456789abcdef0123456789abcdef"
FIRST_MESSAGE = "the first message must be streaming_config; audio_content comes after it"


def started(utterance: int, at: float) -> pb.StreamingRecognizeResponse:
    return pb.StreamingRecognizeResponse(
        speech_event=spb.SpeechEvent(
            type=spb.SPEECH_EVENT_TYPE_SPEECH_STARTED, time_seconds=at, utterance=utterance
        )
    )


def ended(utterance: int, at: float) -> pb.StreamingRecognizeResponse:
    return pb.StreamingRecognizeResponse(
        speech_event=spb.SpeechEvent(
            type=spb.SPEECH_EVENT_TYPE_SPEECH_ENDED, time_seconds=at, utterance=utterance
        )
    )


def result(
    utterance: int, text: str, start: float, end: float, *, final: bool, stability: float = 0.5
) -> pb.StreamingRecognizeResponse:
    return pb.StreamingRecognizeResponse(
        result=spb.StreamingRecognitionResult(
            text=text,
            is_final=final,
            stability=1.0 if final else stability,
            start_seconds=start,
            end_seconds=end,
            utterance=utterance,
            language_code="ko",
        )
    )


def two_utterances() -> list[pb.StreamingRecognizeResponse]:
    return [
        started(1, 0.3),
        result(1, "안녕", 0.3, 1.0, final=False, stability=0.4),
        result(1, "안녕하세요", 0.3, 1.6, final=False, stability=0.8),
        ended(1, 1.9),
        result(1, "안녕하세요.", 0.3, 1.9, final=True),
        started(2, 2.5),
        result(2, "반갑", 2.5, 3.0, final=False),
        ended(2, 3.4),
        result(2, "반갑습니다.", 2.5, 3.4, final=True),
    ]


@dataclass
class LiveScript:
    """`responses`: sent after the client half-closes (each with the job's name), or, with
    `answer_while_sending`, one after every chunk received; `refuse`: abort with this error
    right after the first message (no job name sent); `fail_after_chunks`: abort with `failure`
    once that many audio chunks arrived."""

    responses: list[pb.StreamingRecognizeResponse] = field(default_factory=two_utterances)
    answer_while_sending: bool = False
    refuse: SayItError | None = None
    fail_after_chunks: int | None = None
    failure: SayItError | None = None


class LiveSpeech(pb_grpc.SpeechServiceServicer):
    def __init__(self, script: LiveScript) -> None:
        self.script = script
        self.configs: list[spb.StreamingRecognitionConfig] = []
        self.chunks: list[bytes] = []
        self.chunk_times: list[float] = []
        self.metadata: list[tuple[str, str]] = []
        self.half_closed = threading.Event()
        self.cancelled = threading.Event()

    def StreamingRecognize(
        self,
        request_iterator: Iterator[pb.StreamingRecognizeRequest],
        context: grpc.ServicerContext,
    ) -> Iterator[pb.StreamingRecognizeResponse]:
        context.add_callback(self.cancelled.set)
        self.metadata = [(k, v) for k, v in context.invocation_metadata()]
        first = next(request_iterator, None)
        if first is None or first.WhichOneof("streaming_request") != "streaming_config":
            _abort(context, InvalidArgument(FIRST_MESSAGE, field="streaming_config"))
        assert first is not None
        self.configs.append(first.streaming_config)
        if self.script.refuse is not None:
            _abort(context, self.script.refuse)
        yield pb.StreamingRecognizeResponse(job_name=JOB)
        pending = list(self.script.responses)
        for request in request_iterator:
            self.chunks.append(request.audio_content)
            self.chunk_times.append(time.monotonic())
            if (
                self.script.fail_after_chunks is not None
                and len(self.chunks) >= self.script.fail_after_chunks
            ):
                assert self.script.failure is not None
                _abort(context, self.script.failure)
            if self.script.answer_while_sending and pending:
                yield _named(pending.pop(0))
        self.half_closed.set()
        for response in pending:
            yield _named(response)

    @property
    def audio(self) -> bytes:
        return b"".join(self.chunks)


def _named(response: pb.StreamingRecognizeResponse) -> pb.StreamingRecognizeResponse:
    named = pb.StreamingRecognizeResponse()
    named.CopyFrom(response)
    named.job_name = JOB
    return named


def _abort(context: grpc.ServicerContext, error: SayItError) -> None:
    context.abort_with_status(to_status(error, "req-live"))


def serve(script: LiveScript) -> tuple[grpc.Server, LiveSpeech, str]:
    """Start the service on a free port; returns the server, the service and its address."""
    service = LiveSpeech(script)
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    pb_grpc.add_SpeechServiceServicer_to_server(service, server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    return server, service, f"127.0.0.1:{port}"
