"""The jobs routes against a scripted gateway stub (no network): what each route sends the
gateway (names, config, chunks) and answers (status, Location, JSON, mapped errors), routing
of `{id}:cancel` next to `{id}`, and the event stream's slot and call on a client that leaves."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import grpc
import pytest
from fastapi.testclient import TestClient
from google.protobuf import any_pb2
from google.rpc import error_details_pb2, status_pb2

from sayit.common.v1 import event_pb2, job_pb2
from sayit.speech.v1 import speech_service_pb2 as pb
from services.http_edge.app import create_app
from services.http_edge.config import HttpEdgeSettings
from services.http_edge.gateway import Gateway

JOB_ID = "0123456789abcdef0123456789abcdef"
NAME = f"jobs/{JOB_ID}"
MIB = 1024 * 1024
QUEUED = job_pb2.TranscriptionJob(
    name=NAME, state=job_pb2.JOB_STATE_QUEUED, routing=job_pb2.ROUTING_QUEUED
)


def rpc_error(
    code: grpc.StatusCode, details: str, field: str | None = None
) -> grpc.aio.AioRpcError:
    trailing = grpc.aio.Metadata()
    if field:
        detail = any_pb2.Any()
        detail.Pack(
            error_details_pb2.BadRequest(
                field_violations=[error_details_pb2.BadRequest.FieldViolation(field=field)]
            )
        )
        status = status_pb2.Status(code=code.value[0], message=details, details=[detail])
        trailing = grpc.aio.Metadata(("grpc-status-details-bin", status.SerializeToString()))
    return grpc.aio.AioRpcError(code, grpc.aio.Metadata(), trailing, details=details)


class Upload:
    """A client-streaming UploadJob call."""

    def __init__(self, answer: Any) -> None:
        self.answer = answer
        self.messages: list[pb.UploadJobRequest] = []
        self.done = False
        self.cancelled = False

    async def write(self, message: pb.UploadJobRequest) -> None:
        if isinstance(self.answer, Exception) and self.messages:
            # The gateway ended the call after the header: a later write fails generically.
            raise rpc_error(grpc.StatusCode.INTERNAL, "Internal error from Core")
        self.messages.append(message)

    async def done_writing(self) -> None:
        self.done = True

    def cancel(self) -> bool:
        self.cancelled = True
        return True

    def __await__(self) -> Any:
        async def answer() -> Any:
            if isinstance(self.answer, Exception):
                raise self.answer
            return pb.UploadJobResponse(job=self.answer)

        return answer().__await__()


class Watch:
    def __init__(self, events: list[Any], hang: bool) -> None:
        self.events = list(events)
        self.hang = hang
        self.cancelled = asyncio.Event()

    async def read(self) -> Any:
        if self.events:
            item = self.events.pop(0)
            if isinstance(item, Exception):
                raise item
            return pb.WatchJobResponse(event=item)
        if self.hang:
            await self.cancelled.wait()
        return grpc.aio.EOF

    def cancel(self) -> bool:
        self.cancelled.set()
        return True


class Stub:
    """SpeechServiceStub's jobs calls, answering what the test set."""

    def __init__(self) -> None:
        self.requests: list[tuple[str, Any, Any]] = []
        self.answers: dict[str, Any] = {}
        self.uploads: list[Upload] = []
        self.watches: list[Watch] = []
        self.watch_events: list[Any] = []
        self.watch_hang = False

    def _unary(self, method: str, request: Any, metadata: Any) -> Any:
        self.requests.append((method, request, dict(metadata or ())))
        answer = self.answers[method]

        async def call() -> Any:
            if isinstance(answer, Exception):
                raise answer
            return answer

        return call()

    def GetJob(self, request: Any, metadata: Any = None, timeout: Any = None) -> Any:
        return self._unary("GetJob", request, metadata)

    def ListJobs(self, request: Any, metadata: Any = None, timeout: Any = None) -> Any:
        return self._unary("ListJobs", request, metadata)

    def CancelJob(self, request: Any, metadata: Any = None, timeout: Any = None) -> Any:
        return self._unary("CancelJob", request, metadata)

    def UploadJob(self, metadata: Any = None) -> Upload:
        self.requests.append(("UploadJob", None, dict(metadata or ())))
        upload = Upload(self.answers.get("UploadJob", QUEUED))
        self.uploads.append(upload)
        return upload

    def WatchJob(self, request: Any, metadata: Any = None) -> Watch:
        self.requests.append(("WatchJob", request, dict(metadata or ())))
        watch = Watch(self.watch_events, self.watch_hang)
        self.watches.append(watch)
        return watch


@pytest.fixture
def stub() -> Stub:
    return Stub()


@pytest.fixture
def client(stub: Stub) -> Iterator[TestClient]:
    settings = HttpEdgeSettings.from_env({"SAYIT_HTTP_HEARTBEAT_SECONDS": "5"})
    app = create_app(settings, Gateway(channel=None, stub=stub))  # type: ignore[arg-type]
    with TestClient(app, headers={"Authorization": "Bearer sk-test"}) as test_client:
        yield test_client


def test_raw_body_streams_in_mib_chunks_after_the_header(client: TestClient, stub: Stub) -> None:
    body = bytes(range(256)) * (10 * 1024 + 7)  # 2.5 MiB and a bit
    reply = client.post(
        "/v1/jobs?language=ko&preset=fast&task=translate&word_timestamps=true&vad_filter=false"
        "&prompt=회의&hotwords=SayIt&filename=talk.wav",
        content=body,
        headers={"Content-Type": "audio/wav", "Idempotency-Key": "k-1"},
    )
    assert reply.status_code == 201, reply.text
    assert reply.headers["location"] == f"/v1/jobs/{JOB_ID}"
    assert reply.json()["id"] == JOB_ID and reply.json()["state"] == "queued"
    (upload,) = stub.uploads
    header = upload.messages[0].header
    assert upload.messages[0].WhichOneof("part") == "header"
    assert header.filename == "talk.wav" and header.idempotency_key == "k-1"
    assert header.total_bytes == len(body)
    assert header.config.language_code == "ko"
    assert header.config.preset == 2 and header.config.task == 2
    assert header.config.word_timestamps and header.config.HasField("vad_filter")
    assert not header.config.vad_filter
    assert (header.config.initial_prompt, header.config.hotwords) == ("회의", "SayIt")
    chunks = [m.audio_chunk for m in upload.messages[1:]]
    assert all(m.WhichOneof("part") == "audio_chunk" for m in upload.messages[1:])
    assert [len(c) for c in chunks[:-1]] == [MIB] * (len(chunks) - 1)
    assert 0 < len(chunks[-1]) <= MIB
    assert b"".join(chunks) == body and upload.done
    assert stub.requests[0][2]["authorization"] == "Bearer sk-test"


def test_multipart_upload(client: TestClient, stub: Stub) -> None:
    body = b"RIFF" + b"\x01" * (MIB + 10)
    reply = client.post(
        "/v1/jobs",
        files={"file": ("meeting.wav", body, "audio/wav")},
        data={"language": "en", "word_timestamps": "1", "task": "transcribe"},
    )
    assert reply.status_code == 201, reply.text
    (upload,) = stub.uploads
    header = upload.messages[0].header
    assert header.filename == "meeting.wav" and header.total_bytes == len(body)
    assert header.config.language_code == "en" and header.config.word_timestamps
    assert not header.config.HasField("vad_filter")  # unset: the gateway's default
    assert [len(m.audio_chunk) for m in upload.messages[1:]] == [MIB, 14]
    assert b"".join(m.audio_chunk for m in upload.messages[1:]) == body


def test_multipart_without_file_and_bad_fields(client: TestClient, stub: Stub) -> None:
    reply = client.post("/v1/jobs", files={"other": ("a.wav", b"x")}, data={"language": "ko"})
    assert reply.status_code == 400
    assert reply.json()["error"]["param"] == "file"
    reply = client.post("/v1/jobs", files={"file": ("a.wav", b"x")}, data={"preset": "slow"})
    assert reply.status_code == 400 and reply.json()["error"]["param"] == "preset"
    reply = client.post("/v1/jobs", files={"file": ("a.wav", b"x")}, data={"colour": "red"})
    assert reply.status_code == 400 and reply.json()["error"]["param"] == "colour"
    reply = client.post("/v1/jobs?word_timestamps=maybe", content=b"x")
    assert reply.status_code == 400 and reply.json()["error"]["param"] == "word_timestamps"
    assert stub.uploads == []


def test_upload_errors_name_the_http_params(client: TestClient, stub: Stub) -> None:
    stub.answers["UploadJob"] = rpc_error(
        grpc.StatusCode.INVALID_ARGUMENT, "unknown language code 'xx'", "config.language_code"
    )
    reply = client.post("/v1/jobs?language=xx", content=b"abc")
    assert reply.status_code == 400
    assert reply.json()["error"] == {
        "message": "unknown language code 'xx'",
        "type": "invalid_request_error",
        "param": "language",
        "code": "invalid_argument",
    }
    stub.answers["UploadJob"] = rpc_error(grpc.StatusCode.UNAUTHENTICATED, "no API key")
    assert client.post("/v1/jobs", content=b"abc").status_code == 401


def test_body_over_the_limit_cancels_the_upload(stub: Stub) -> None:
    settings = HttpEdgeSettings.from_env({"SAYIT_HTTP_MAX_BODY_BYTES": "4096"})
    app = create_app(settings, Gateway(channel=None, stub=stub))  # type: ignore[arg-type]

    def chunked() -> Iterator[bytes]:  # no Content-Length: the limit applies as it is read
        for _ in range(4):
            yield b"x" * 2000

    with TestClient(app) as client:
        reply = client.post("/v1/jobs", content=chunked())
    assert reply.status_code == 413, reply.text
    (upload,) = stub.uploads
    assert upload.cancelled and not upload.done  # no job is made of part of a file


def test_get_list_cancel(client: TestClient, stub: Stub) -> None:
    stub.answers["GetJob"] = pb.GetJobResponse(job=QUEUED)
    reply = client.get(f"/v1/jobs/{JOB_ID}")
    assert reply.status_code == 200 and reply.json()["name"] == NAME
    assert stub.requests[-1][1].name == NAME

    stub.answers["ListJobs"] = pb.ListJobsResponse(jobs=[QUEUED, QUEUED], next_page_token="t2")
    reply = client.get("/v1/jobs?page_size=2&page_token=t1&view=full")
    assert reply.status_code == 200
    assert reply.json()["object"] == "list" and reply.json()["next_page_token"] == "t2"
    assert len(reply.json()["data"]) == 2
    sent = stub.requests[-1][1]
    assert (sent.page_size, sent.page_token, sent.view) == (2, "t1", job_pb2.JOB_VIEW_FULL)
    client.get("/v1/jobs")
    assert (stub.requests[-1][1].page_size, stub.requests[-1][1].view) == (0, 1)
    assert client.get("/v1/jobs?page_size=0").status_code == 400
    assert client.get("/v1/jobs?view=everything").status_code == 400

    # POST {id}:cancel is the cancel route, not {id}; GET {id}:cancel is a job id.
    cancelled = job_pb2.TranscriptionJob(name=NAME, state=job_pb2.JOB_STATE_CANCELLED)
    stub.answers["CancelJob"] = pb.CancelJobResponse(job=cancelled)
    reply = client.post(f"/v1/jobs/{JOB_ID}:cancel")
    assert reply.status_code == 200 and reply.json()["state"] == "cancelled"
    assert stub.requests[-1][0] == "CancelJob" and stub.requests[-1][1].name == NAME
    assert client.post(f"/v1/jobs/{JOB_ID}").status_code == 405
    stub.answers["CancelJob"] = rpc_error(
        grpc.StatusCode.FAILED_PRECONDITION, f"{NAME} has already ended"
    )
    reply = client.post(f"/v1/jobs/{JOB_ID}:cancel")
    assert reply.status_code == 409 and "already ended" in reply.json()["error"]["message"]


def test_gateway_errors_on_a_job_name(client: TestClient, stub: Stub) -> None:
    stub.answers["GetJob"] = rpc_error(
        grpc.StatusCode.INVALID_ARGUMENT, "name must look like 'jobs/<32 ...>'", "name"
    )
    reply = client.get("/v1/jobs/nope")
    assert reply.status_code == 400 and reply.json()["error"]["param"] == "id"
    stub.answers["GetJob"] = rpc_error(grpc.StatusCode.NOT_FOUND, "no job")
    assert client.get(f"/v1/jobs/{JOB_ID}").status_code == 404


def events_of(text: str) -> list[tuple[str | None, str | None]]:
    out = []
    for block in text.split("\n\n"):
        fields = dict(line.split(": ", 1) for line in block.split("\n") if ": " in line)
        if "event" in fields:
            out.append((fields.get("id"), fields["event"]))
    return out


def test_events_stream_and_resume(client: TestClient, stub: Stub) -> None:
    stub.watch_events = [
        event_pb2.JobEvent(name=NAME, sequence=4, progress=job_pb2.JobProgress(fraction=0.5)),
        event_pb2.JobEvent(name=NAME, sequence=5, completed=event_pb2.JobCompleted()),
    ]
    reply = client.get(f"/v1/jobs/{JOB_ID}/events?after=1", headers={"Last-Event-ID": "3"})
    assert reply.status_code == 200
    assert reply.headers["content-type"].startswith("text/event-stream")
    assert reply.headers["cache-control"] == "no-cache"
    assert events_of(reply.text) == [("4", "progress"), ("5", "completed")]
    assert stub.requests[-1][1].after_sequence == 3 and stub.requests[-1][1].name == NAME
    assert stub.watches[-1].cancelled.is_set()
    assert client.app.state.streams.open == 0  # type: ignore[attr-defined]

    client.get(f"/v1/jobs/{JOB_ID}/events?after=2")
    assert stub.requests[-1][1].after_sequence == 2
    reply = client.get(f"/v1/jobs/{JOB_ID}/events", headers={"Last-Event-ID": "x"})
    assert reply.status_code == 400 and reply.json()["error"]["param"] == "Last-Event-ID"
    assert client.get(f"/v1/jobs/{JOB_ID}/events?after=-1").status_code == 400


def test_events_errors_before_and_after_the_start(client: TestClient, stub: Stub) -> None:
    stub.watch_events = [rpc_error(grpc.StatusCode.NOT_FOUND, "no such job")]
    reply = client.get(f"/v1/jobs/{JOB_ID}/events")
    assert reply.status_code == 404 and reply.json()["error"]["code"] == "not_found"
    assert client.app.state.streams.open == 0  # type: ignore[attr-defined]
    stub.watch_events = [
        event_pb2.JobEvent(name=NAME, sequence=1, accepted=event_pb2.JobAccepted()),
        rpc_error(grpc.StatusCode.UNAVAILABLE, "the scheduler is down"),
    ]
    reply = client.get(f"/v1/jobs/{JOB_ID}/events")
    assert reply.status_code == 200
    assert events_of(reply.text) == [("1", "accepted"), (None, "error")]
    assert '"code": "unavailable"' in reply.text


def test_stream_slots_are_taken_and_released(stub: Stub) -> None:
    settings = HttpEdgeSettings.from_env({"SAYIT_HTTP_MAX_OPEN_STREAMS": "1"})
    app = create_app(settings, Gateway(channel=None, stub=stub))  # type: ignore[arg-type]
    app.state.streams.take()  # another stream holds the only slot
    with TestClient(app) as client:
        reply = client.get(f"/v1/jobs/{JOB_ID}/events")
        assert reply.status_code == 429 and reply.headers["retry-after"] == "1"
        assert stub.watches == []
        app.state.streams.release()
        stub.watch_events = [event_pb2.JobEvent(name=NAME, sequence=1, cancelled={})]
        assert client.get(f"/v1/jobs/{JOB_ID}/events").status_code == 200
        assert app.state.streams.open == 0


async def test_client_leaving_cancels_the_watch(stub: Stub) -> None:
    """An HTTP client that goes away while the job is quiet: the WatchJob call is cancelled
    and the stream's slot given back."""
    settings = HttpEdgeSettings.from_env({})
    app = create_app(settings)
    app.state.gateway = Gateway(channel=None, stub=stub)  # type: ignore[arg-type]  # no lifespan
    stub.watch_events = [event_pb2.JobEvent(name=NAME, sequence=1, accepted={})]
    stub.watch_hang = True
    sent: list[dict[str, Any]] = []
    first_event = asyncio.Event()
    leave = asyncio.Event()

    async def receive() -> dict[str, Any]:
        await leave.wait()
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)
        if b"event: accepted" in message.get("body", b""):
            first_event.set()

    scope = {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.3"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": f"/v1/jobs/{JOB_ID}/events",
        "raw_path": f"/v1/jobs/{JOB_ID}/events".encode(),
        "query_string": b"",
        "headers": [(b"host", b"test")],
        "client": ("127.0.0.1", 1),
        "server": ("test", 80),
        "app": app,
    }
    serving = asyncio.ensure_future(app(scope, receive, send))
    await asyncio.wait_for(first_event.wait(), 5)
    assert app.state.streams.open == 1
    (watch,) = stub.watches
    assert not watch.cancelled.is_set()
    leave.set()
    await asyncio.wait_for(serving, 5)
    assert watch.cancelled.is_set()
    assert app.state.streams.open == 0
    assert sent[0]["status"] == 200
