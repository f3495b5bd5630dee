"""One case of the bad-input corpus (the call, and the status and message expected or a check on
the reply), and the builders and checks the corpus is written with."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import grpc
import pytest

from sayit.common.v1 import audio_pb2, job_pb2
from sayit.common.v1 import transcription_pb2 as tpb
from sayit.speech.v1 import speech_service_pb2 as pb

OK = grpc.StatusCode.OK
INVALID = grpc.StatusCode.INVALID_ARGUMENT
EXHAUSTED = grpc.StatusCode.RESOURCE_EXHAUSTED
NOT_FOUND = grpc.StatusCode.NOT_FOUND


@dataclass(frozen=True)
class Case:
    id: str
    rpc: str
    request: Callable[[], Any]
    code: grpc.StatusCode
    message: str = ""  # words the status message must contain
    # For calls that succeed: a check on the reply.
    check: Callable[[Any], None] | None = None
    field: str = ""  # the BadRequest field violation expected, when the gateway can name it


def transcribe(content: bytes, filename: str = "", **config: Any) -> Callable[[], Any]:
    def build() -> pb.TranscribeRequest:
        return pb.TranscribeRequest(
            audio=audio_pb2.Audio(content=content, filename=filename),
            config=tpb.TranscriptionConfig(**config),
        )

    return build


def lazy(make: Callable[[], bytes], filename: str = "", **config: Any) -> Callable[[], Any]:
    return lambda: transcribe(make(), filename, **config)()


def says_platforms(reply: pb.TranscribeResponse) -> None:
    assert reply.WhichOneof("result") == "transcript", reply
    assert "platforms" in reply.transcript.text.lower(), reply.transcript.text


def is_a_transcript(reply: pb.TranscribeResponse) -> None:
    assert reply.WhichOneof("result") == "transcript", reply
    assert reply.transcript.audio_duration_seconds == pytest.approx(1.0, abs=0.05)


def says_nothing(reply: pb.TranscribeResponse) -> None:
    assert reply.WhichOneof("result") == "transcript", reply
    assert reply.transcript.text.strip() == "", reply.transcript.text
    assert reply.transcript.audio_duration_seconds == pytest.approx(5.0, abs=0.1)


def queued_long_job(reply: pb.TranscribeResponse) -> None:
    assert reply.WhichOneof("result") == "job", reply
    assert reply.job.routing == job_pb2.ROUTING_QUEUED
    assert reply.job.audio_duration_seconds == pytest.approx(600.0, abs=0.5)


def must_transcribe(id: str, make: Callable[[], bytes], filename: str = "") -> Case:
    return Case(
        id, "Transcribe", lazy(make, filename, language_code="en"), OK, check=says_platforms
    )


def bad_audio(id: str, make: Callable[[], bytes], message: str, filename: str = "") -> Case:
    return Case(id, "Transcribe", lazy(make, filename), INVALID, message)
