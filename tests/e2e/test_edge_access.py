"""The edge of a real mesh with mutual TLS everywhere: who gets in. API keys and tenants (no
tenant sees another's jobs), and TLS with and without client certificates. The mesh is the
session's `edge` (tests/e2e/conftest.py); test_edge_limits.py covers the limits."""

from __future__ import annotations

import os
import subprocess
import sys

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import (
    ProtoReflectionDescriptorDatabase,
)

from devsupport import evalset
from devsupport.processes import ROOT, ServiceProcess, channel, free_port, health_status
from sayit.common.v1 import job_pb2
from sayit.speech.v1 import speech_service_pb2 as pb
from sayit.speech.v1 import speech_service_pb2_grpc as pb_grpc
from tests.support.edge import EdgeMesh
from tests.support.edge_jobs import ENDED, wait_job
from tests.support.speech import audio_request, rpc_error
from tests.support.tls import Authority

pytestmark = pytest.mark.model

SPEECH = "sayit.speech.v1.SpeechService"


def test_health_and_reflection_need_no_key(edge: EdgeMesh) -> None:
    with edge.channel() as chan:
        reply = health_pb2_grpc.HealthStub(chan).Check(
            health_pb2.HealthCheckRequest(service=SPEECH), timeout=10
        )
        assert reply.status == health_pb2.HealthCheckResponse.SERVING
        assert SPEECH in ProtoReflectionDescriptorDatabase(chan).get_services()


@pytest.mark.parametrize(
    ("metadata", "message"),
    [
        ([], "no API key"),
        ([("authorization", "Basic dXNlcjpwYXNz")], "malformed authorization"),
        ([("authorization", "Bearer")], "malformed authorization"),
        ([("authorization", "Bearer ")], "malformed authorization"),
        ([("authorization", "Bearer a b")], "malformed authorization"),
        ([("authorization", "Bearer sayit_not-a-key-we-issued")], "not recognised"),
        (
            [("authorization", "Bearer one"), ("authorization", "Bearer two")],
            "2 authorization entries",
        ),
    ],
    ids=["none", "basic", "bearer-no-key", "bearer-blank", "two-words", "unknown", "twice"],
)
def test_missing_malformed_or_unknown_keys_are_unauthenticated(
    edge: EdgeMesh, metadata: list, message: str
) -> None:
    stub = edge.stub()
    for call, request in (
        (stub.ListJobs, pb.ListJobsRequest()),
        (stub.GetJob, pb.GetJobRequest(name="jobs/" + "0" * 32)),
        (stub.Transcribe, pb.TranscribeRequest(**audio_request(b"RIFF"))),  # type: ignore[arg-type]
        (stub.WatchJob, pb.WatchJobRequest(name="jobs/" + "0" * 32)),
    ):
        error = rpc_error(call, request, metadata=metadata, timeout=10)
        assert error.code() == grpc.StatusCode.UNAUTHENTICATED, (call, error)
        assert message in error.details(), error.details()
        assert "Bearer" in error.details() or "not recognised" in error.details()


def test_a_key_without_the_right_is_permission_denied(edge: EdgeMesh) -> None:
    stub = edge.stub()
    reader = edge.auth("acme-reader")
    clip = evalset.clip("en_jfk").read()
    for call, request in (
        (stub.Transcribe, pb.TranscribeRequest(**audio_request(clip, "en"))),  # type: ignore[arg-type]
        (stub.CreateJob, pb.CreateJobRequest(**audio_request(clip, "en"))),  # type: ignore[arg-type]
        (stub.CancelJob, pb.CancelJobRequest(name="jobs/" + "0" * 32)),
    ):
        error = rpc_error(call, request, metadata=reader, timeout=10)
        assert error.code() == grpc.StatusCode.PERMISSION_DENIED, error
        assert "'acme-reader' may not call" in error.details()
    # Reading is its right.
    assert stub.ListJobs(pb.ListJobsRequest(), metadata=reader, timeout=10) is not None


def test_no_tenant_sees_another_tenants_jobs(edge: EdgeMesh) -> None:
    stub = edge.stub()
    acme, reader, globex = edge.auth("acme"), edge.auth("acme-reader"), edge.auth("globex")
    clip = evalset.clip("en_pv_cheetah_test").read()
    direct = stub.Transcribe(
        pb.TranscribeRequest(**audio_request(clip, "en")),  # type: ignore[arg-type]
        metadata=acme,
        timeout=120,
    )
    assert "platforms" in direct.transcript.text.lower()
    # A queued job, run by the queue worker over mutual TLS to its transcriber.
    queued = stub.CreateJob(
        pb.CreateJobRequest(**audio_request(clip, "en")),  # type: ignore[arg-type]
        metadata=acme,
        timeout=30,
    ).job
    unknown = "jobs/" + "0" * 32
    for name in (direct.job_name, queued.name):
        for metadata in (acme, reader):
            assert stub.GetJob(pb.GetJobRequest(name=name), metadata=metadata, timeout=10).job.name
        calls = (
            (stub.GetJob, pb.GetJobRequest(name=name)),
            (stub.WatchJob, pb.WatchJobRequest(name=name)),
            (stub.CancelJob, pb.CancelJobRequest(name=name)),
        )
        for call, request in calls:
            error = rpc_error(call, request, metadata=globex, timeout=10)
            assert error.code() == grpc.StatusCode.NOT_FOUND, (call, error)
            # Exactly what a job that does not exist gets: nothing tells them apart.
            missing = rpc_error(call, type(request)(name=unknown), metadata=globex, timeout=10)
            assert missing.code() == grpc.StatusCode.NOT_FOUND
            assert error.details() == missing.details().replace(unknown, name)
    listed = stub.ListJobs(pb.ListJobsRequest(page_size=100), metadata=globex, timeout=10)
    assert not {direct.job_name, queued.name} & {j.name for j in listed.jobs}
    mine = stub.ListJobs(pb.ListJobsRequest(page_size=100), metadata=reader, timeout=10)
    assert {direct.job_name, queued.name} <= {j.name for j in mine.jobs}
    # globex's cancel did nothing: the queued job still finishes for acme.
    final = wait_job(stub, queued.name, acme, ENDED)
    assert final.state == job_pb2.JOB_STATE_SUCCEEDED, final
    assert "platforms" in final.transcript.text.lower()


def test_mutual_tls_refuses_clients_without_a_trusted_certificate(edge: EdgeMesh, tmp_path) -> None:
    stranger = Authority(tmp_path / "stranger", "stranger-ca")
    stranger_client = stranger.issue("intruder", server=False)
    ours = edge.certs.client_tls(None)
    for name in ("gateway", "scheduler", "transcriber-direct"):
        addr = edge.mesh.processes[name].addr or ""
        assert health_status(addr, tls=edge.certs.client_tls("operator")) == 1  # SERVING
        assert health_status(addr) is None, f"{name} answered plaintext"
        assert health_status(addr, tls=ours) is None, f"{name} answered without a certificate"
        intruder = type(ours)(
            ours.ca, stranger_client.cert.read_bytes(), stranger_client.key.read_bytes()
        )
        assert health_status(addr, tls=intruder) is None, f"{name} trusted a stranger's certificate"
    # A call without a client certificate fails before any handler runs.
    with channel(edge.gateway_addr, ours) as chan:
        error = rpc_error(
            pb_grpc.SpeechServiceStub(chan).ListJobs,
            pb.ListJobsRequest(),
            metadata=edge.auth("acme"),
            timeout=10,
        )
    assert error.code() == grpc.StatusCode.UNAVAILABLE
    # The health-check CLI speaks TLS from the same SAYIT_TLS_* variables.
    env = {k: v for k, v in os.environ.items() if not k.startswith("SAYIT_TLS")}
    tls_env = edge.certs.client_env("operator")
    probe = [sys.executable, "-m", "services.common.healthcheck", edge.gateway_addr]
    ok = subprocess.run(probe, env={**env, **tls_env}, cwd=ROOT, capture_output=True, text=True)
    assert ok.returncode == 0 and "SERVING" in ok.stdout, ok
    refused = subprocess.run(probe, env=env, cwd=ROOT, capture_output=True, text=True)
    assert refused.returncode == 1 and "not answering" in refused.stdout, refused


def test_tls_without_client_certificates(edge: EdgeMesh, tmp_path) -> None:
    """A second gateway serving plain TLS (no client certificates asked) in front of the same
    mutual-TLS scheduler: a caller without a certificate gets in; plaintext still does not."""
    env = {
        **edge.gateway_env(mutual=False),
        "SAYIT_GATEWAY_ADDR": f"127.0.0.1:{free_port()}",
        "SAYIT_SCHEDULER_ADDR": edge.mesh.scheduler_addr,
        "SAYIT_API_KEYS_FILE": str(edge.keys_file),
        "SAYIT_REDIS_URL": edge.mesh.redis.url_for("gateway"),
    }
    gateway = ServiceProcess(
        "services.gateway",
        env,
        tmp_path / "gateway-tls.log",
        addr=env["SAYIT_GATEWAY_ADDR"],
        tls=edge.certs.client_tls(None),
    ).start()
    try:
        gateway.wait_serving(60)
        with channel(gateway.addr or "", edge.certs.client_tls(None)) as chan:
            reply = pb_grpc.SpeechServiceStub(chan).ListJobs(
                pb.ListJobsRequest(), metadata=edge.auth("acme"), timeout=10
            )
        assert reply.jobs, "acme's jobs, read through the TLS gateway and the mTLS scheduler"
        assert health_status(gateway.addr or "") is None
        assert '"tls": "on"' in gateway.log_path.read_text()
        assert '"tls": "mutual"' in edge.mesh.logs("scheduler")
    finally:
        assert gateway.stop() == 0
