"""Small helpers for calling the public SpeechService in tests."""

from __future__ import annotations

import itertools
import time
from collections.abc import Iterator

import grpc

from sayit.common.v1 import audio_pb2, event_pb2, job_pb2, transcription_pb2
from sayit.speech.v1 import speech_service_pb2 as pb
from sayit.speech.v1 import speech_service_pb2_grpc as pb_grpc


def audio_request(content: bytes, language: str = "", filename: str = "") -> dict[str, object]:
    return {
        "audio": audio_pb2.Audio(content=content, filename=filename),
        "config": transcription_pb2.TranscriptionConfig(language_code=language),
    }


def kinds(events: list[event_pb2.JobEvent]) -> list[str]:
    return [str(e.WhichOneof("kind")) for e in events]


def watch(
    stub: pb_grpc.SpeechServiceStub, name: str, after: int = 0, timeout: float = 600
) -> list[event_pb2.JobEvent]:
    return [
        r.event
        for r in stub.WatchJob(pb.WatchJobRequest(name=name, after_sequence=after), timeout=timeout)
    ]


def get(stub: pb_grpc.SpeechServiceStub, name: str) -> job_pb2.TranscriptionJob:
    return stub.GetJob(pb.GetJobRequest(name=name), timeout=10).job


def wait_state(
    stub: pb_grpc.SpeechServiceStub, name: str, states: set[int], timeout: float = 120
) -> job_pb2.TranscriptionJob:
    deadline = time.monotonic() + timeout
    while True:
        job = get(stub, name)
        if job.state in states or time.monotonic() > deadline:
            return job
        time.sleep(0.1)


def create_job(
    stub: pb_grpc.SpeechServiceStub, content: bytes, language: str = ""
) -> job_pb2.TranscriptionJob:
    return stub.CreateJob(
        pb.CreateJobRequest(**audio_request(content, language)),  # type: ignore[arg-type]
        timeout=30,
    ).job


def rpc_error(call: object, *args: object, **kwargs: object) -> grpc.RpcError:
    """The RpcError a call raises (fails the test if it succeeds)."""
    try:
        result = call(*args, **kwargs)  # type: ignore[operator]
        if hasattr(result, "__iter__") and not isinstance(result, bytes | str):
            list(result)
    except grpc.RpcError as error:
        return error
    raise AssertionError("the call succeeded")


def start_with_progress(
    speech: pb_grpc.SpeechServiceStub, content: bytes, language: str
) -> tuple[str, Iterator[event_pb2.JobEvent]]:
    """Start a TranscribeWithProgress call: the job's name (from its `accepted` event, which
    the iterator yields again first) and the call's events."""
    call = speech.TranscribeWithProgress(
        pb.TranscribeWithProgressRequest(**audio_request(content, language)),  # type: ignore[arg-type]
        timeout=300,
    )
    first = next(call).event
    assert first.HasField("accepted")
    return first.name, itertools.chain([first], (r.event for r in call))
