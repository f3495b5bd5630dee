"""The OpenAI routes against a scripted gateway stub (no network): which gateway call a file
takes, the upload's chunk sizes, the config sent, job waits, streaming and model checks."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Iterator
from typing import Any

import grpc
import pytest
from fastapi.testclient import TestClient

from sayit.common.v1 import event_pb2, job_pb2
from sayit.common.v1 import transcription_pb2 as tpb
from sayit.speech.v1 import speech_service_pb2 as pb
from services.http_edge.app import create_app
from services.http_edge.config import HttpEdgeSettings
from services.http_edge.gateway import Gateway

INLINE = 4096
TRANSCRIPT = tpb.Transcript(
    text="hello there. general kenobi.",
    language_code="en",
    audio_duration_seconds=3.0,
    model="base",
    segments=[
        tpb.Segment(id=0, start_seconds=0.0, end_seconds=1.5, text="hello there."),
        tpb.Segment(id=1, start_seconds=1.5, end_seconds=3.0, text="general kenobi."),
    ],
)


class Unary:
    def __init__(self, result: Any) -> None:
        self.result = result
        self.cancelled = False

    def cancel(self) -> bool:
        self.cancelled = True
        return True

    def __await__(self) -> Any:
        async def run() -> Any:
            result = self.result() if callable(self.result) else self.result
            if asyncio.iscoroutine(result):
                result = await result
            if isinstance(result, Exception):
                raise result
            return result

        return run().__await__()


class Events:
    """A server stream of JobEvents (read() or async iteration); `hang` never ends."""

    def __init__(self, events: list[event_pb2.JobEvent], hang: bool = False) -> None:
        self.events = list(events)
        self.hang = hang
        self.cancelled = False

    def cancel(self) -> bool:
        self.cancelled = True
        return True

    async def read(self) -> Any:
        if self.events:
            return pb.WatchJobResponse(event=self.events.pop(0))
        if self.hang:
            await asyncio.sleep(3600)
        return grpc.aio.EOF

    def __aiter__(self) -> AsyncIterator[Any]:
        return self._iterate()

    async def _iterate(self) -> AsyncIterator[Any]:
        while (message := await self.read()) is not grpc.aio.EOF:
            yield message


def event(name: str, sequence: int, **kind: Any) -> event_pb2.JobEvent:
    return event_pb2.JobEvent(name=name, job_id=name[5:], sequence=sequence, **kind)


class Stub:
    def __init__(self) -> None:
        self.calls: list[tuple[str, Any]] = []
        self.chunks: list[int] = []
        self.watch_events: list[event_pb2.JobEvent] = []
        self.watch_hang = False
        self.transcribe_result: Any = pb.TranscribeResponse(
            transcript=TRANSCRIPT, job_name="jobs/direct1"
        )
        self.watches: list[Events] = []

    def GetInfo(self, request: Any, **kwargs: Any) -> Unary:
        self.calls.append(("GetInfo", kwargs.get("metadata")))
        return Unary(pb.GetInfoResponse(model="base"))

    def Transcribe(self, request: pb.TranscribeRequest, **kwargs: Any) -> Unary:
        self.calls.append(("Transcribe", request))
        return Unary(self.transcribe_result)

    def TranscribeWithProgress(self, request: Any, **kwargs: Any) -> Events:
        self.calls.append(("TranscribeWithProgress", request))
        name = "jobs/direct2"
        return Events(
            [
                event(name, 1, accepted=event_pb2.JobAccepted(routing=job_pb2.ROUTING_DIRECT)),
                event(name, 2, segment=TRANSCRIPT.segments[0]),
                event(name, 3, progress=job_pb2.JobProgress(fraction=0.5)),
                event(name, 4, segment=TRANSCRIPT.segments[1]),
                event(name, 5, completed=event_pb2.JobCompleted(transcript=TRANSCRIPT)),
            ]
        )

    def UploadJob(self, requests: AsyncIterator[pb.UploadJobRequest], **kwargs: Any) -> Unary:
        async def consume() -> pb.UploadJobResponse:
            header = None
            async for message in requests:
                if message.WhichOneof("part") == "header":
                    header = message.header
                else:
                    self.chunks.append(len(message.audio_chunk))
            self.calls.append(("UploadJob", header))
            return pb.UploadJobResponse(job=job_pb2.TranscriptionJob(name="jobs/queued1"))

        return Unary(consume)

    def WatchJob(self, request: pb.WatchJobRequest, **kwargs: Any) -> Events:
        self.calls.append(("WatchJob", request))
        watch = Events(self.watch_events, hang=self.watch_hang)
        self.watches.append(watch)
        return watch


class Channel:
    async def close(self) -> None:
        pass


@pytest.fixture
def stub() -> Stub:
    return Stub()


@pytest.fixture
def http(stub: Stub) -> Iterator[TestClient]:
    settings = HttpEdgeSettings.from_env(
        {
            "SAYIT_HTTP_INLINE_BYTES": str(INLINE),
            "SAYIT_HTTP_TRANSCRIPTION_WAIT_SECONDS": "1",
        }
    )
    app = create_app(settings, Gateway(Channel(), stub))  # type: ignore[arg-type]
    with TestClient(app) as client:
        yield client


def post(http: TestClient, size: int = 100, path: str = "transcriptions", **fields: Any) -> Any:
    return http.post(
        f"/v1/audio/{path}",
        files={"file": ("clip.flac", b"x" * size, "audio/flac")},
        data=fields,
        headers={"Authorization": "Bearer k1"},
    )


def test_small_file_by_transcribe_with_the_callers_config(http: TestClient, stub: Stub) -> None:
    reply = post(
        http,
        model="whisper-1",
        language="Korean",
        prompt="names",
        preset="fast",
        hotwords="SayIt",
        response_format="verbose_json",
        **{"timestamp_granularities[]": ["word", "segment"]},
    )
    assert reply.status_code == 200, reply.text
    assert reply.headers["x-sayit-job"] == "jobs/direct1"
    assert reply.json()["language"] == "english" and len(reply.json()["segments"]) == 2
    ((kind, request),) = stub.calls
    assert kind == "Transcribe"
    assert request.audio.filename == "clip.flac" and request.audio.content == b"x" * 100
    config = request.config
    assert (config.language_code, config.initial_prompt, config.hotwords) == (
        "ko",
        "names",
        "SayIt",
    )
    assert config.preset == tpb.PRESET_FAST and config.word_timestamps
    assert config.task == tpb.TASK_TRANSCRIBE and config.model == ""


def test_large_file_uploads_in_chunks_and_waits_for_the_job(http: TestClient, stub: Stub) -> None:
    stub.watch_events = [
        event("jobs/queued1", 1, accepted=event_pb2.JobAccepted(routing=job_pb2.ROUTING_QUEUED)),
        event("jobs/queued1", 2, completed=event_pb2.JobCompleted(transcript=TRANSCRIPT)),
    ]
    size = 2 * 1024 * 1024 + 10
    reply = post(http, size, path="translations", response_format="text")
    assert reply.status_code == 200, reply.text
    assert reply.text == "hello there. general kenobi.\n"
    assert reply.headers["content-type"].startswith("text/plain")
    assert reply.headers["x-sayit-job"] == "jobs/queued1"
    assert stub.chunks == [1024 * 1024, 1024 * 1024, 10]
    header = next(value for kind, value in stub.calls if kind == "UploadJob")
    assert header.total_bytes == size and header.config.task == tpb.TASK_TRANSLATE
    assert ("WatchJob", pb.WatchJobRequest(name="jobs/queued1")) in stub.calls


def test_queued_job_that_fails_or_outlasts_the_wait(http: TestClient, stub: Stub) -> None:
    stub.transcribe_result = pb.TranscribeResponse(
        job=job_pb2.TranscriptionJob(name="jobs/q2"), job_name="jobs/q2"
    )
    stub.watch_events = [
        event(
            "jobs/q2",
            1,
            failed=event_pb2.JobFailed(error=job_pb2.JobError(code=3, message="no speech decoder")),
        ),
    ]
    reply = post(http)
    assert reply.status_code == 400 and reply.json()["error"]["message"] == "no speech decoder"
    assert reply.headers["x-sayit-job"] == "jobs/q2"

    stub.watch_events, stub.watch_hang = [], True
    reply = post(http, response_format="srt")
    assert reply.status_code == 504
    assert reply.json()["error"]["code"] == "job_still_running"
    assert reply.headers["location"] == "/v1/jobs/q2"
    assert reply.headers["x-should-retry"] == "false"
    assert stub.watches[-1].cancelled  # the edge's watch ends; the job goes on


def test_stream_sends_deltas_then_done(http: TestClient, stub: Stub) -> None:
    reply = post(http, stream="true")
    assert reply.status_code == 200
    assert reply.headers["content-type"].startswith("text/event-stream")
    assert reply.headers["x-sayit-job"] == "jobs/direct2"
    events = [json.loads(line[6:]) for line in reply.text.splitlines() if line.startswith("data: ")]
    assert [e["type"] for e in events] == [
        "transcript.text.delta",
        "transcript.text.delta",
        "transcript.text.done",
    ]
    assert "".join(e["delta"] for e in events[:2]) == events[2]["text"] == TRANSCRIPT.text
    assert events[1]["segment"] == {"id": 1, "start": 1.5, "end": 3.0, "text": "general kenobi."}
    assert http.app.state.streams.open == 0  # type: ignore[attr-defined]


def test_model_checks_and_bad_fields(http: TestClient, stub: Stub) -> None:
    assert post(http, model="base").status_code == 200
    reply = post(http, model="gpt-4o-transcribe")
    assert reply.status_code == 400
    assert reply.json()["error"]["param"] == "model"
    assert "'whisper-1' or 'base'" in reply.json()["error"]["message"]
    reply = post(http, response_format="xml")
    assert reply.status_code == 400 and reply.json()["error"]["param"] == "response_format"
    reply = post(http, **{"timestamp_granularities[]": "sentence"})
    assert reply.status_code == 400
    assert reply.json()["error"]["param"].startswith("timestamp_granularities[]")
    reply = http.post("/v1/audio/transcriptions", data={"model": "whisper-1"})
    assert reply.status_code == 400 and reply.json()["error"]["param"] == "file"
    assert sum(1 for kind, _ in stub.calls if kind == "Transcribe") == 1


def test_models(http: TestClient, stub: Stub) -> None:
    listed = http.get("/v1/models", headers={"Authorization": "Bearer k1"}).json()
    assert listed["object"] == "list"
    assert [m["id"] for m in listed["data"]] == ["base", "whisper-1"]
    assert stub.calls[-1] == ("GetInfo", (("authorization", "Bearer k1"), stub.calls[-1][1][1]))
    assert http.get("/v1/models/whisper-1").json()["object"] == "model"
    missing = http.get("/v1/models/gpt-4o")
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "model_not_found"
