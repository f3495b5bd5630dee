"""A small real SpeechService for the Python client's retry tests: a gRPC server on a free port
that fails each method as the test scripts it, with the statuses SayIt's own error mapping
builds (services.common.status: RetryInfo and the retry pushback trailer), and records every
attempt that reaches it. It is about what the client sends, never about transcription."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from concurrent import futures
from dataclasses import dataclass, field
from typing import Any

import grpc

from sayit.common.v1 import event_pb2, job_pb2
from sayit.common.v1 import transcription_pb2 as tpb
from sayit.speech.v1 import speech_service_pb2 as pb
from sayit.speech.v1 import speech_service_pb2_grpc as pb_grpc
from services.common.errors import NotFound, SayItError, Unavailable
from services.common.status import to_status

JOB = "jobs/0123456789abcdef0123456789abcdef"
DOWN = "the transcription service is unavailable; retry in a few seconds"


@dataclass
class Attempt:
    method: str
    at: float
    request: Any


@dataclass
class Script:
    """`failures[method]`: how many attempts fail with UNAVAILABLE before one succeeds (-1 =
    all); `hint`: the RetryInfo seconds they carry (None = none); `events`: how many events a
    watch of JOB has (the last one `completed`); `break_after`: the first watch stream fails
    with UNAVAILABLE after this many events; `give_up_after`: attempts after which every call
    answers NOT_FOUND (so that a client that never stops retrying still ends)."""

    failures: dict[str, int] = field(default_factory=dict)
    hint: float | None = 2.0
    events: int = 6
    break_after: int | None = None
    give_up_after: int | None = None


class ScriptedSpeech(pb_grpc.SpeechServiceServicer):
    def __init__(self, script: Script) -> None:
        self.script = script
        self.attempts: list[Attempt] = []
        self._lock = threading.Lock()
        self._broken = False

    def of(self, method: str) -> list[Attempt]:
        with self._lock:
            return [a for a in self.attempts if a.method == method]

    def _enter(self, method: str, request: Any, context: grpc.ServicerContext) -> None:
        with self._lock:
            self.attempts.append(Attempt(method, time.monotonic(), request))
            total = len(self.attempts)
            seen = sum(1 for a in self.attempts if a.method == method)
        script = self.script
        if script.give_up_after is not None and total > script.give_up_after:
            _abort(context, NotFound(f"{JOB} was not found"))
        allowed = script.failures.get(method, 0)
        if allowed < 0 or seen <= allowed:
            _abort(context, Unavailable(DOWN, retry_after_seconds=script.hint))

    def Transcribe(self, request: Any, context: grpc.ServicerContext) -> pb.TranscribeResponse:
        self._enter("Transcribe", request, context)
        return pb.TranscribeResponse(transcript=tpb.Transcript(text="안녕하세요"))

    def CreateJob(self, request: Any, context: grpc.ServicerContext) -> pb.CreateJobResponse:
        self._enter("CreateJob", request, context)
        return pb.CreateJobResponse(job=_job())

    def GetJob(self, request: Any, context: grpc.ServicerContext) -> pb.GetJobResponse:
        self._enter("GetJob", request, context)
        return pb.GetJobResponse(job=_job())

    def CancelJob(self, request: Any, context: grpc.ServicerContext) -> pb.CancelJobResponse:
        self._enter("CancelJob", request, context)
        return pb.CancelJobResponse(job=_job())

    def WatchJob(
        self, request: pb.WatchJobRequest, context: grpc.ServicerContext
    ) -> Iterator[pb.WatchJobResponse]:
        self._enter("WatchJob", request, context)
        for sequence in range(request.after_sequence + 1, self.script.events + 1):
            with self._lock:
                breaking = (
                    not self._broken
                    and self.script.break_after is not None
                    and sequence > self.script.break_after
                )
                self._broken = self._broken or breaking
            if breaking:
                _abort(context, Unavailable(DOWN, retry_after_seconds=self.script.hint))
            yield pb.WatchJobResponse(event=_event(sequence, self.script.events))


def _abort(context: grpc.ServicerContext, error: SayItError) -> None:
    context.abort_with_status(to_status(error, "req-scripted"))


def _job() -> job_pb2.TranscriptionJob:
    return job_pb2.TranscriptionJob(name=JOB, state=job_pb2.JOB_STATE_QUEUED)


def _event(sequence: int, last: int) -> event_pb2.JobEvent:
    event = event_pb2.JobEvent(name=JOB, job_id=JOB.removeprefix("jobs/"), sequence=sequence)
    if sequence == last:
        event.completed.transcript.text = "안녕하세요"
    else:
        event.progress.fraction = sequence / last
    return event


def serve(script: Script, port: int = 0) -> tuple[grpc.Server, ScriptedSpeech, str]:
    """Start the service (on `port`, or a free one); returns the server, the service and its
    address."""
    service = ScriptedSpeech(script)
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=8))
    pb_grpc.add_SpeechServiceServicer_to_server(service, server)
    bound = server.add_insecure_port(f"127.0.0.1:{port}")
    server.start()
    return server, service, f"127.0.0.1:{bound}"
