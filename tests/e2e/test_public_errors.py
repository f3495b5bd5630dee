"""What a public caller reads when the mesh behind the gateway fails: with the scheduler down,
and separately Redis, every call gets UNAVAILABLE with a message it can act on (which names
its request id), google.rpc.RetryInfo and gRPC's retry pushback, and never an internal address.
The Python client, against the same real gateway, retries a read until the scheduler is back
and never repeats a Transcribe.

A gateway and a scheduler on a private Redis, over real gRPC; no transcriber is needed (every
call here fails before one would be asked), so no model is loaded.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from google.rpc import error_details_pb2, status_pb2

from devsupport import evalset
from devsupport.mesh import Mesh, RedisServer
from sayit.common.v1 import audio_pb2
from sayit.speech.v1 import speech_service_pb2 as pb
from sayit.speech.v1 import speech_service_pb2_grpc as pb_grpc
from services.client import ClientError, SayItClient
from tests.support.addresses import leaks

pytestmark = pytest.mark.redis

NO_JOB = "jobs/" + "0" * 32
SCHEDULER_DOWN = "the transcription service is unavailable; retry in a few seconds"
REDIS_DOWN = "the job store is unavailable; retry in a few seconds"


@pytest.fixture(scope="module")
def mesh(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Mesh]:
    directory: Path = tmp_path_factory.mktemp("public-errors")
    redis_server = RedisServer(directory / "redis").start()
    mesh = Mesh(
        directory,
        redis_server,
        queue_transcribers=0,
        # No tenant limits, so the gateway itself needs no Redis and calls reach the scheduler's
        # job store (a failing quota store refuses at the gateway: test_quota_store_down.py).
        service_env={"gateway": {"SAYIT_TENANT_REQUESTS_PER_SECOND": "0"}},
    ).build()
    try:
        for name in ("scheduler", "gateway"):
            mesh.processes[name].start()
        for name in ("scheduler", "gateway"):
            mesh.processes[name].wait_serving()
        yield mesh
    finally:
        for name in ("gateway", "scheduler"):
            mesh.processes[name].stop(timeout=20)
        redis_server.stop()


@pytest.fixture(scope="module")
def speech(mesh: Mesh) -> pb_grpc.SpeechServiceStub:
    return pb_grpc.SpeechServiceStub(mesh.gateway_channel())


@pytest.fixture(scope="module")
def audio() -> audio_pb2.Audio:
    clip = evalset.clips("ko", max_seconds=10)[0]
    return audio_pb2.Audio(content=clip.read(), filename=clip.path.name)


def wait_until_reachable(mesh: Mesh) -> None:
    """Until the gateway reaches the scheduler again (its channel reconnects with backoff)."""
    stub = pb_grpc.SpeechServiceStub(mesh.gateway_channel())
    deadline = time.monotonic() + 20
    while True:
        try:
            stub.GetJob(pb.GetJobRequest(name=NO_JOB), timeout=5)
        except grpc.RpcError as error:
            if error.code() == grpc.StatusCode.NOT_FOUND:
                return
            assert time.monotonic() < deadline, error.details()
            time.sleep(0.2)


@pytest.fixture
def scheduler_down(mesh: Mesh) -> Iterator[None]:
    mesh.processes["scheduler"].kill()
    try:
        yield
    finally:
        mesh.processes["scheduler"].start()
        mesh.processes["scheduler"].wait_serving()
        wait_until_reachable(mesh)


@pytest.fixture
def redis_down(mesh: Mesh) -> Iterator[None]:
    mesh.redis.kill()
    try:
        yield
    finally:
        mesh.redis.start()


def calls(speech: pb_grpc.SpeechServiceStub, audio: audio_pb2.Audio) -> dict[str, object]:
    return {
        "GetJob": lambda md: speech.GetJob(pb.GetJobRequest(name=NO_JOB), metadata=md, timeout=20),
        "ListJobs": lambda md: speech.ListJobs(pb.ListJobsRequest(), metadata=md, timeout=20),
        "CancelJob": lambda md: speech.CancelJob(
            pb.CancelJobRequest(name=NO_JOB), metadata=md, timeout=20
        ),
        "Transcribe": lambda md: speech.Transcribe(
            pb.TranscribeRequest(audio=audio), metadata=md, timeout=20
        ),
        "CreateJob": lambda md: speech.CreateJob(
            pb.CreateJobRequest(audio=audio), metadata=md, timeout=20
        ),
    }


def failure(call: object, request_id: str) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as raised:
        call([("x-request-id", request_id)])  # type: ignore[operator]
    return raised.value


def assert_retryable(error: grpc.RpcError, message: str, request_id: str) -> None:
    assert error.code() == grpc.StatusCode.UNAVAILABLE, error.details()
    assert error.details() == f"{message} (request id {request_id})"
    assert leaks(error.details()) == []
    trailing = dict(error.trailing_metadata() or ())
    rich = status_pb2.Status.FromString(trailing["grpc-status-details-bin"])
    assert rich.message == error.details()
    hints = []
    for item in rich.details:
        info = error_details_pb2.RetryInfo()
        if item.Unpack(info):
            hints.append(info.retry_delay.ToNanoseconds() / 1e9)
    assert hints == [2.0]
    assert trailing["grpc-retry-pushback-ms"] == "2000"


@pytest.mark.usefixtures("scheduler_down")
def test_with_the_scheduler_down_every_call_is_unavailable_with_a_clean_message(
    speech: pb_grpc.SpeechServiceStub, audio: audio_pb2.Audio
) -> None:
    for method, call in calls(speech, audio).items():
        request_id = f"sched-down-{method}"
        assert_retryable(failure(call, request_id), SCHEDULER_DOWN, request_id)
    watch = speech.WatchJob(
        pb.WatchJobRequest(name=NO_JOB), metadata=[("x-request-id", "sched-down-w")], timeout=20
    )
    with pytest.raises(grpc.RpcError) as raised:
        list(watch)
    assert_retryable(raised.value, SCHEDULER_DOWN, "sched-down-w")


def test_the_gateway_logs_what_it_does_not_tell(
    mesh: Mesh, speech: pb_grpc.SpeechServiceStub, scheduler_down: None
) -> None:
    failure(lambda md: speech.GetJob(pb.GetJobRequest(name=NO_JOB), metadata=md), "logged-1")
    [logged] = [
        e
        for e in mesh.log_events("gateway")
        if e.get("event") == "downstream_failed" and e.get("request_id") == "logged-1"
    ]
    assert logged["code"] == "UNAVAILABLE"
    assert leaks(logged["details"]), logged  # gRPC's own words, with the address, for operators


@pytest.mark.usefixtures("redis_down")
def test_with_redis_down_every_call_is_unavailable_with_a_clean_message(
    speech: pb_grpc.SpeechServiceStub, audio: audio_pb2.Audio
) -> None:
    for method, call in calls(speech, audio).items():
        request_id = f"redis-down-{method}"
        assert_retryable(failure(call, request_id), REDIS_DOWN, request_id)


def test_the_client_retries_a_read_until_the_scheduler_is_back(mesh: Mesh) -> None:
    scheduler = mesh.processes["scheduler"]
    scheduler.kill()

    def come_back() -> None:
        time.sleep(1.5)
        scheduler.start()

    back = threading.Thread(target=come_back)
    back.start()
    try:
        with (
            SayItClient(mesh.gateway_addr, api_key=mesh.api_key, timeout=30) as client,
            pytest.raises(ClientError) as raised,
        ):
            client.get_job(NO_JOB)
    finally:
        back.join()
        scheduler.wait_serving()
        wait_until_reachable(mesh)
    # The retries reached the scheduler once it was back: the job does not exist.
    assert raised.value.code == grpc.StatusCode.NOT_FOUND
    getjobs = [
        e["code"]
        for e in mesh.log_events("gateway")
        if e.get("event") == "rpc_finished" and e.get("method", "").endswith("/GetJob")
    ]
    assert getjobs[-1] == "NOT_FOUND" and "UNAVAILABLE" in getjobs[-3:-1]


@pytest.mark.usefixtures("scheduler_down")
def test_the_client_sends_a_transcribe_once(mesh: Mesh, audio: audio_pb2.Audio) -> None:
    with (
        SayItClient(mesh.gateway_addr, api_key=mesh.api_key, wait_timeout=30) as client,
        pytest.raises(ClientError) as raised,
    ):
        client.transcribe(audio.content, filename=audio.filename, request_id="once-1")
    sent = [
        e
        for e in mesh.log_events("gateway")
        if e.get("event") == "rpc_finished" and e.get("request_id") == "once-1"
    ]
    # A repeat could transcribe (and charge) the audio twice: the gateway saw it once.
    assert [e["method"] for e in sent] == ["/sayit.speech.v1.SpeechService/Transcribe"]
    assert raised.value.code == grpc.StatusCode.UNAVAILABLE
    assert raised.value.message == f"{SCHEDULER_DOWN} (request id once-1)"
    assert raised.value.retry_after == 2.0
