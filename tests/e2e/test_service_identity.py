"""Service identity on the internal hops of the real mesh (mutual TLS on, as by default): the
scheduler answers only the gateway's certificate, a transcriber only the scheduler's and the
workers'; without a certificate of the mesh's CA nobody gets past the handshake. Health and
reflection stay open to any certificate of the CA."""

from __future__ import annotations

from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2

from devsupport.mesh import Mesh
from devsupport.processes import channel, health_status
from sayit.scheduler.v1 import scheduler_service_pb2 as spb
from sayit.scheduler.v1 import scheduler_service_pb2_grpc as spb_grpc
from sayit.transcriber.v1 import transcriber_service_pb2 as tpb
from sayit.transcriber.v1 import transcriber_service_pb2_grpc as tpb_grpc
from services.common.tls import ClientTLS
from tests.support.speech import rpc_error
from tests.support.tls import Authority, anonymous_client

pytestmark = pytest.mark.model

SCHEDULER = "sayit.scheduler.v1.SchedulerService"
TRANSCRIBER = "sayit.transcriber.v1.TranscriberService"


def list_jobs(mesh: Mesh, tls: ClientTLS | None) -> spb.ListJobsResponse:
    # The tenant is in the request: why only the gateway, which authenticated it, may call.
    with channel(mesh.scheduler_addr, tls) as chan:
        stub = spb_grpc.SchedulerServiceStub(chan)
        return stub.ListJobs(spb.ListJobsRequest(tenant="other"), timeout=10)


def get_info(mesh: Mesh, tls: ClientTLS | None) -> tpb.GetInfoResponse:
    with channel(mesh.processes["transcriber-direct"].addr or "", tls) as chan:
        return tpb_grpc.TranscriberServiceStub(chan).GetInfo(tpb.GetInfoRequest(), timeout=10)


def refused(call: object, mesh: Mesh, tls: ClientTLS | None) -> grpc.RpcError:
    return rpc_error(call, mesh, tls)


def strangers(mesh: Mesh, directory: Path) -> dict[str, ClientTLS | None]:
    """Callers that never get past the TLS handshake."""
    own = mesh.tls_as(None)
    assert own is not None
    stranger = Authority(directory / "stranger", "stranger-ca")
    pair = stranger.issue("gateway", server=False)
    return {
        "plaintext": None,
        "no certificate": own,
        "another CA's certificate": ClientTLS(
            own.ca, pair.cert.read_bytes(), pair.key.read_bytes()
        ),
    }


@pytest.mark.parametrize("call", [list_jobs, get_info], ids=["scheduler", "transcriber"])
def test_without_a_certificate_of_the_mesh_no_call_gets_through(
    mesh: Mesh, tmp_path: Path, call: object
) -> None:
    for who, tls in strangers(mesh, tmp_path).items():
        error = refused(call, mesh, tls)
        # Refused in the handshake: no handler ran, nothing but "unavailable" is told.
        assert error.code() == grpc.StatusCode.UNAVAILABLE, (who, error)


@pytest.mark.parametrize("call", [list_jobs, get_info], ids=["scheduler", "transcriber"])
def test_a_certificate_of_the_mesh_naming_no_service_is_unauthenticated(
    mesh: Mesh, tmp_path: Path, call: object
) -> None:
    assert mesh.certificates is not None
    error = refused(call, mesh, anonymous_client(mesh.certificates, tmp_path))
    assert error.code() == grpc.StatusCode.UNAUTHENTICATED, error
    assert "presenting their mesh certificate (spiffe://sayit/<service>)" in error.details()
    assert "this call presented none" in error.details()


def test_the_scheduler_answers_the_gateway_only(mesh: Mesh) -> None:
    for service in ("transcriber", "worker", "operator", "scheduler"):
        error = refused(list_jobs, mesh, mesh.tls_as(service))
        assert error.code() == grpc.StatusCode.PERMISSION_DENIED, (service, error)
        assert error.details().startswith(
            f"service '{service}' may not call the {SCHEDULER}; it accepts calls from gateway only"
        ), error.details()
        assert "127.0.0.1" not in error.details()
    reply = list_jobs(mesh, mesh.tls_as("gateway"))
    assert list(reply.jobs) == []  # tenant "other" has none, but the call went through


def test_a_transcriber_answers_the_scheduler_and_the_workers_only(mesh: Mesh) -> None:
    for service in ("gateway", "operator", "transcriber"):
        error = refused(get_info, mesh, mesh.tls_as(service))
        assert error.code() == grpc.StatusCode.PERMISSION_DENIED, (service, error)
        assert error.details().startswith(
            f"service '{service}' may not call the {TRANSCRIBER}; "
            "it accepts calls from scheduler, worker only"
        ), error.details()
    for service in ("scheduler", "worker"):
        assert get_info(mesh, mesh.tls_as(service)).slots_total >= 1


def test_health_is_open_to_any_certificate_of_the_mesh(mesh: Mesh) -> None:
    for name in ("scheduler", "transcriber-direct"):
        addr = mesh.processes[name].addr or ""
        for service in ("operator", "gateway", "worker"):
            status = health_status(addr, tls=mesh.tls_as(service))
            assert status == health_pb2.HealthCheckResponse.SERVING, (name, service)
        assert health_status(addr) is None, f"{name} answered plaintext"
    assert '"tls": "mutual"' in mesh.logs("scheduler")
    assert '"allowed_peers": ["gateway"]' in mesh.logs("scheduler")
    assert '"allowed_peers": ["scheduler", "worker"]' in mesh.logs("transcriber-direct")
