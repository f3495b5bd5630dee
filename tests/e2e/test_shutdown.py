"""SIGTERM to each service of a real mesh while a call is in flight: health turns NOT_SERVING,
new calls are refused (UNAVAILABLE, retryable), the call in flight finishes, the process exits 0.
A queue worker finishes its current job (RQ's warm shutdown) and takes no new one."""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor

import grpc
import pytest
from grpc_health.v1 import health_pb2

from devsupport import audio, evalset, processes
from devsupport.mesh import Mesh, running
from sayit.common.v1 import job_pb2
from sayit.scheduler.v1 import scheduler_service_pb2 as spb
from sayit.scheduler.v1 import scheduler_service_pb2_grpc as spb_grpc
from sayit.speech.v1 import speech_service_pb2 as pb
from sayit.speech.v1 import speech_service_pb2_grpc as pb_grpc
from sayit.transcriber.v1 import transcriber_service_pb2 as tpb
from sayit.transcriber.v1 import transcriber_service_pb2_grpc as tpb_grpc
from services.common.tls import ClientTLS
from tests.support.speech import audio_request, create_job, get, rpc_error, wait_state

pytestmark = pytest.mark.model

NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING
SERVING = health_pb2.HealthCheckResponse.SERVING
ENDED = {job_pb2.JOB_STATE_SUCCEEDED, job_pb2.JOB_STATE_FAILED, job_pb2.JOB_STATE_CANCELLED}
GRACE_SECONDS = 20


@pytest.fixture(scope="module")
def small_mesh(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Mesh]:
    with running(
        tmp_path_factory.mktemp("shutdown"),
        queue_transcribers=1,
        direct_slots=1,
        extra_env={"SAYIT_SHUTDOWN_GRACE_SECONDS": str(GRACE_SECONDS)},
    ) as mesh:
        yield mesh


def stub(mesh: Mesh) -> pb_grpc.SpeechServiceStub:
    return pb_grpc.SpeechServiceStub(mesh.gateway_channel())


def transcriber_busy(mesh: Mesh, name: str) -> int:
    as_scheduler = processes.channel(mesh.processes[name].addr or "", mesh.tls_as("scheduler"))
    info = tpb_grpc.TranscriberServiceStub(as_scheduler)
    return info.GetInfo(tpb.GetInfoRequest(), timeout=5).slots_busy


def wait_until(condition: Callable[[], bool], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def in_flight_transcribe(mesh: Mesh, content: bytes, language: str) -> Future:
    """Start a Transcribe through the gateway; return once the direct transcriber works on it."""
    pool = ThreadPoolExecutor(1)
    future = pool.submit(
        stub(mesh).Transcribe,
        pb.TranscribeRequest(**audio_request(content, language)),  # type: ignore[arg-type]
        timeout=300,
    )
    pool.shutdown(wait=False)
    wait_until(lambda: transcriber_busy(mesh, "transcriber-direct") == 1 or future.done())
    assert not future.done(), future.result()
    return future


def watch_health(
    addr: str, seen: list[int | None], stop: threading.Event, tls: ClientTLS | None
) -> threading.Thread:
    def run() -> None:
        while not stop.is_set():
            status = processes.health_status(addr, timeout=0.5, tls=tls)
            if not seen or seen[-1] != status:
                seen.append(status)
            time.sleep(0.02)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def sigterm_and_check(mesh: Mesh, name: str, refused: Callable[[], grpc.RpcError]) -> None:
    """SIGTERM `name`, check it turns NOT_SERVING and refuses new calls while the call in
    flight goes on, and that it exits 0."""
    process = mesh.processes[name]
    seen: list[int | None] = []
    stop = threading.Event()
    # Internal services answer health over mutual TLS (any certificate of the mesh).
    tls = None if name == "gateway" else mesh.tls_as("operator")
    watch_health(process.addr or "", seen, stop, tls)
    time.sleep(0.2)
    process.signal(signal.SIGTERM)
    wait_until(lambda: NOT_SERVING in seen, 10)
    error = refused()
    assert error.code() == grpc.StatusCode.UNAVAILABLE, error
    assert "shutting down" in error.details()
    assert process.process is not None
    assert process.process.wait(GRACE_SECONDS + 10) == 0
    stop.set()
    assert seen[:2] == [SERVING, NOT_SERVING], seen
    log = mesh.logs(name)
    assert '"shutdown_started"' in log and '"exit_code": 0' in log


def test_sigterm_gateway_finishes_the_call_in_flight(small_mesh: Mesh) -> None:
    content, _, _ = audio.korean_long(20.0)
    future = in_flight_transcribe(small_mesh, content, "ko")
    gateway = small_mesh.gateway_addr

    def refused() -> grpc.RpcError:
        return rpc_error(stub(small_mesh).ListJobs, pb.ListJobsRequest(), timeout=10)

    try:
        sigterm_and_check(small_mesh, "gateway", refused)
        reply = future.result(timeout=60)
        assert reply.WhichOneof("result") == "transcript"
        assert len(reply.transcript.text) > 20
    finally:
        small_mesh.restart("gateway")
    assert small_mesh.gateway_addr == gateway
    assert get(stub(small_mesh), reply.job_name).state == job_pb2.JOB_STATE_SUCCEEDED


def test_sigterm_scheduler_finishes_the_call_in_flight(small_mesh: Mesh) -> None:
    content, _, _ = audio.korean_long(20.0)
    future = in_flight_transcribe(small_mesh, content, "ko")
    scheduler = small_mesh.processes["scheduler"].addr or ""

    def refused() -> grpc.RpcError:
        as_gateway = processes.channel(scheduler, small_mesh.tls_as("gateway"))
        direct = spb_grpc.SchedulerServiceStub(as_gateway)
        return rpc_error(direct.ListJobs, spb.ListJobsRequest(tenant="default"), timeout=10)

    try:
        sigterm_and_check(small_mesh, "scheduler", refused)
        reply = future.result(timeout=60)
        assert reply.WhichOneof("result") == "transcript"
    finally:
        small_mesh.restart("scheduler")
    assert get(stub(small_mesh), reply.job_name).state == job_pb2.JOB_STATE_SUCCEEDED


def test_sigterm_transcriber_finishes_the_call_in_flight(small_mesh: Mesh) -> None:
    content, _, _ = audio.korean_long(20.0)
    future = in_flight_transcribe(small_mesh, content, "ko")
    addr = small_mesh.processes["transcriber-direct"].addr or ""

    def refused() -> grpc.RpcError:
        as_scheduler = processes.channel(addr, small_mesh.tls_as("scheduler"))
        direct = tpb_grpc.TranscriberServiceStub(as_scheduler)
        return rpc_error(
            direct.TranscribeStream,
            tpb.TranscribeStreamRequest(),
            timeout=10,
        )

    try:
        sigterm_and_check(small_mesh, "transcriber-direct", refused)
        reply = future.result(timeout=60)
        assert reply.WhichOneof("result") == "transcript"
        assert get(stub(small_mesh), reply.job_name).routing == job_pb2.ROUTING_DIRECT
    finally:
        small_mesh.restart("transcriber-direct")


def test_sigterm_worker_finishes_its_current_job_and_takes_no_new_one(small_mesh: Mesh) -> None:
    speech = stub(small_mesh)
    content, _, _ = audio.korean_long(40.0)
    job = create_job(speech, content, "ko")
    assert wait_state(speech, job.name, {job_pb2.JOB_STATE_RUNNING}, 60).state == (
        job_pb2.JOB_STATE_RUNNING
    )
    worker = small_mesh.processes["worker-q1"]
    worker.signal(signal.SIGTERM)  # the worker only, as Kubernetes does: not its work horse
    time.sleep(0.5)
    waiting = create_job(speech, evalset.clip("en_pv_cheetah_test").read(), "en")
    try:
        final = wait_state(speech, job.name, ENDED, 120)
        assert final.state == job_pb2.JOB_STATE_SUCCEEDED, final
        assert len(final.transcript.text) > 50
        assert worker.process is not None and worker.process.wait(30) == 0
        # The draining worker took nothing new: the next job still waits for a worker.
        assert get(speech, waiting.name).state == job_pb2.JOB_STATE_QUEUED
    finally:
        small_mesh.restart("worker-q1")
    assert wait_state(speech, waiting.name, ENDED, 120).state == job_pb2.JOB_STATE_SUCCEEDED
