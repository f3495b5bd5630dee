"""The edge of a real mesh with mutual TLS everywhere: its limits. Rate limits and audio quotas
(with google.rpc details a client can parse), queue backpressure, and a caller's deadline
stopping the transcriber's work. The mesh is the session's `edge` (tests/e2e/conftest.py)."""

from __future__ import annotations

import contextlib
import time

import grpc
import pytest
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from devsupport import audio, evalset
from devsupport.processes import ServiceProcess, free_port
from sayit.common.v1 import job_pb2
from sayit.speech.v1 import speech_service_pb2 as pb
from sayit.transcriber.v1 import transcriber_service_pb2 as tpb
from sayit.transcriber.v1 import transcriber_service_pb2_grpc as tpb_grpc
from tests.support.edge import AUDIO_SECONDS_PER_DAY, MAX_QUEUE_WAIT_SECONDS, EdgeMesh
from tests.support.edge_jobs import ENDED, wait_job
from tests.support.speech import audio_request, rpc_error

pytestmark = pytest.mark.model


def details(error: grpc.RpcError) -> dict[str, object]:
    """The google.rpc details of a failed call, by type name, as a client would parse them."""
    status = rpc_status.from_call(error)  # type: ignore[arg-type]
    assert status is not None, f"no google.rpc.Status in {error}"
    found: dict[str, object] = {}
    for detail in status.details:
        for cls in (
            error_details_pb2.RetryInfo,
            error_details_pb2.QuotaFailure,
            error_details_pb2.BadRequest,
        ):
            if detail.Is(cls.DESCRIPTOR):
                message = cls()
                detail.Unpack(message)
                found[cls.__name__] = message
    return found


def test_request_rate_limit_has_retry_info_and_quota_failure(edge: EdgeMesh) -> None:
    stub = edge.stub()
    tiny = edge.auth("tiny")
    outcomes = []
    for _ in range(4):
        try:
            stub.ListJobs(pb.ListJobsRequest(), metadata=tiny, timeout=10)
            outcomes.append(grpc.StatusCode.OK)
        except grpc.RpcError as error:
            outcomes.append(error.code())
            refused = error
    # Bursts of 2, then 0.5 requests/s.
    assert outcomes[:2] == [grpc.StatusCode.OK] * 2
    assert grpc.StatusCode.RESOURCE_EXHAUSTED in outcomes[2:]
    assert "over its rate of 0.5 requests/s" in refused.details()
    found = details(refused)
    retry = found["RetryInfo"].retry_delay.ToTimedelta().total_seconds()  # type: ignore[attr-defined]
    assert 0 < retry <= 2.0
    [violation] = found["QuotaFailure"].violations  # type: ignore[attr-defined]
    assert violation.subject == "tenant:tiny" and "requests per second" in violation.description
    # Other tenants are not slowed down by tiny.
    for _ in range(5):
        stub.ListJobs(pb.ListJobsRequest(), metadata=edge.auth("acme"), timeout=10)
    # After the hinted delay the tenant is served again.
    time.sleep(retry + 0.1)
    stub.ListJobs(pb.ListJobsRequest(), metadata=tiny, timeout=10)


def test_audio_seconds_per_day_quota(edge: EdgeMesh, tmp_path) -> None:
    stub = edge.stub()
    meter = edge.auth("meter")
    clip = evalset.clip("en_jfk")  # 11 s; the quota is 20 s a day
    assert 10 < clip.duration_seconds < AUDIO_SECONDS_PER_DAY
    counter = f"sayit:quota:meter:audio:{time.strftime('%Y-%m-%d', time.gmtime())}"
    redis = edge.mesh.redis.client()
    # Audio that fails before it is accepted costs nothing.
    bad = rpc_error(
        stub.Transcribe,
        pb.TranscribeRequest(**audio_request(b"not audio at all" * 10)),  # type: ignore[arg-type]
        metadata=meter,
        timeout=30,
    )
    assert bad.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert redis.get(counter) is None
    reply = stub.Transcribe(
        pb.TranscribeRequest(**audio_request(clip.read(), "en")),  # type: ignore[arg-type]
        metadata=meter,
        timeout=120,
    )
    assert "ask not what your country" in reply.transcript.text.lower()
    assert float(redis.get(counter) or 0) == pytest.approx(clip.duration_seconds, abs=0.1)

    error = rpc_error(
        stub.Transcribe,
        pb.TranscribeRequest(**audio_request(clip.read(), "en")),  # type: ignore[arg-type]
        metadata=meter,
        timeout=120,
    )
    assert error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert "has used 11 of its 20 audio seconds today" in error.details()
    assert "resets at 00:00 UTC" in error.details()
    found = details(error)
    retry = found["RetryInfo"].retry_delay.ToTimedelta().total_seconds()  # type: ignore[attr-defined]
    assert 0 < retry <= 86400
    [violation] = found["QuotaFailure"].violations  # type: ignore[attr-defined]
    assert violation.subject == "tenant:meter"
    assert violation.description == f"audio seconds per day: {AUDIO_SECONDS_PER_DAY}"
    # Refused requests are not charged.
    assert float(redis.get(counter) or 0) == pytest.approx(clip.duration_seconds, abs=0.1)

    # A replica of the gateway shares the same counters through Redis.
    env = {
        **edge.gateway_env(mutual=True),
        "SAYIT_GATEWAY_ADDR": f"127.0.0.1:{free_port()}",
        "SAYIT_SCHEDULER_ADDR": edge.mesh.scheduler_addr,
        "SAYIT_API_KEYS_FILE": str(edge.keys_file),
        "SAYIT_REDIS_URL": edge.mesh.redis.url_for("gateway"),
    }
    replica = ServiceProcess(
        "services.gateway",
        env,
        tmp_path / "replica.log",
        addr=env["SAYIT_GATEWAY_ADDR"],
        tls=edge.certs.client_tls("operator"),
    ).start()
    try:
        replica.wait_serving(60)
        other = edge.stub(replica.addr)
        again = rpc_error(
            other.CreateJob,
            pb.CreateJobRequest(**audio_request(clip.read(), "en")),  # type: ignore[arg-type]
            metadata=meter,
            timeout=30,
        )
        assert again.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert "has used 11 of its 20" in again.details()
        # A file longer than the whole daily quota: retrying tomorrow would not help either.
        long_audio, _, seconds = audio.korean_long(25.0)
        assert seconds > AUDIO_SECONDS_PER_DAY
        too_long = rpc_error(
            other.CreateJob,
            pb.CreateJobRequest(**audio_request(long_audio, "ko")),  # type: ignore[arg-type]
            metadata=meter,
            timeout=30,
        )
        assert too_long.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert "more than tenant 'meter''s whole daily quota" in too_long.details()
        assert "RetryInfo" not in details(too_long)
    finally:
        replica.stop()


def test_queue_backpressure_refuses_new_queued_work_with_a_retry_hint(edge: EdgeMesh) -> None:
    stub = edge.stub()
    acme = edge.auth("acme")
    long_clip = evalset.clip("en_long_ljspeech_LJ001").read()  # 231 s

    def create() -> job_pb2.TranscriptionJob:
        return stub.CreateJob(
            pb.CreateJobRequest(**audio_request(long_clip, "en")),  # type: ignore[arg-type]
            metadata=acme,
            timeout=30,
        ).job

    created = []
    try:
        running = create()  # the only queue worker takes it
        created.append(running)
        job = wait_job(stub, running.name, acme, {job_pb2.JOB_STATE_RUNNING}, 60)
        assert job.state == job_pb2.JOB_STATE_RUNNING
        # The scheduler counts what it admitted until its next look at the queue (bursts
        # cannot slip past a stale estimate): let that look see the running job gone.
        time.sleep(2.5)
        waiting = create()  # nothing is queued ahead of it: admitted
        created.append(waiting)
        time.sleep(2.5)  # let the scheduler's snapshot of the queue expire
        error = rpc_error(
            stub.CreateJob,
            pb.CreateJobRequest(**audio_request(long_clip, "en")),  # type: ignore[arg-type]
            metadata=acme,
            timeout=30,
        )
        assert error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED, error
        assert "the transcription queue is full" in error.details()
        assert f"more than the {MAX_QUEUE_WAIT_SECONDS} s allowed" in error.details()
        found = details(error)  # passed on unchanged by the gateway
        retry = found["RetryInfo"].retry_delay.ToTimedelta().total_seconds()  # type: ignore[attr-defined]
        assert retry >= 1
        [violation] = found["QuotaFailure"].violations  # type: ignore[attr-defined]
        assert violation.subject == "queue:sayit-default"
        # Short audio still runs direct: backpressure holds back only queued work.
        clip = evalset.clip("en_pv_cheetah_test").read()
        reply = stub.Transcribe(
            pb.TranscribeRequest(**audio_request(clip, "en")),  # type: ignore[arg-type]
            metadata=acme,
            timeout=120,
        )
        assert reply.WhichOneof("result") == "transcript"
    finally:
        for job in created:
            with contextlib.suppress(grpc.RpcError):
                stub.CancelJob(pb.CancelJobRequest(name=job.name), metadata=acme, timeout=10)
    # Once the queue has drained, queued work is accepted again.
    time.sleep(2.5)
    clip = evalset.clip("en_pv_cheetah_test").read()
    accepted = stub.CreateJob(
        pb.CreateJobRequest(**audio_request(clip, "en")),  # type: ignore[arg-type]
        metadata=acme,
        timeout=30,
    ).job
    assert wait_job(stub, accepted.name, acme, ENDED).state == job_pb2.JOB_STATE_SUCCEEDED


def test_a_short_deadline_stops_the_direct_transcription(edge: EdgeMesh) -> None:
    """gateway -> scheduler -> transcriber: when the caller's deadline passes, the transcriber
    stops decoding (its slot is freed at once), and the job says it was cancelled."""
    # Nearly 30 s of speech takes several seconds to decode even on an idle machine, so the
    # 1 s deadline always passes mid-decoding.
    content, _, seconds = audio.korean_long(27.0)
    assert seconds < 30  # direct path
    direct = edge.mesh.processes["transcriber-direct"].addr or ""
    # Asked as the scheduler, who may call transcribers.
    info = tpb_grpc.TranscriberServiceStub(edge.channel(direct, as_service="scheduler"))

    def get_info() -> tpb.GetInfoResponse:
        return info.GetInfo(tpb.GetInfoRequest(), timeout=10)

    before = get_info()
    stub = edge.stub()
    acme = edge.auth("acme")
    started = time.monotonic()
    error = rpc_error(
        stub.Transcribe,
        pb.TranscribeRequest(**audio_request(content, "ko")),  # type: ignore[arg-type]
        metadata=acme,
        timeout=1.0,
    )
    assert error.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    deadline = time.monotonic() + 10
    while get_info().slots_busy and time.monotonic() < deadline:
        time.sleep(0.05)
    stopped = get_info()
    assert stopped.slots_busy == 0
    assert stopped.calls_cancelled_total == before.calls_cancelled_total + 1
    assert stopped.calls_completed_total == before.calls_completed_total
    freed_after = time.monotonic() - started
    time.sleep(1.5)
    assert get_info().segments_decoded_total == stopped.segments_decoded_total, "still decoding"
    [job] = stub.ListJobs(pb.ListJobsRequest(page_size=1), metadata=acme, timeout=10).jobs
    job = wait_job(stub, job.name, acme, ENDED, 10)
    assert job.state == job_pb2.JOB_STATE_CANCELLED, job
    assert job.audio_duration_seconds == pytest.approx(seconds, abs=0.5)
    print(f"transcriber slot freed {freed_after:.1f} s after a 1 s deadline")
