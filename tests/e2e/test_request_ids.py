"""Request and job ids from a public caller, through the real gateway to the scheduler: a valid
request id is every hop's, unchanged; a hostile one (sent as raw HTTP/2, since grpc's client
refuses control characters) and a forged job id never reach either service's log lines."""

from __future__ import annotations

import grpc
import pytest

from devsupport.mesh import Mesh
from sayit.speech.v1 import speech_service_pb2 as pb
from sayit.speech.v1 import speech_service_pb2_grpc as pb_grpc
from tests.support.raw_h2 import unary_call

pytestmark = pytest.mark.model

LIST_JOBS = "/sayit.speech.v1.SpeechService/ListJobs"
SCHEDULER_LIST_JOBS = "/sayit.scheduler.v1.SchedulerService/ListJobs"
VICTIM_JOB = "f" * 32


def new_lines(mesh: Mesh, name: str, since: int) -> list[dict[str, object]]:
    return mesh.log_events(name)[since:]


def test_a_valid_request_id_is_every_hops_and_the_caller_is_told(
    speech: pb_grpc.SpeechServiceStub, mesh: Mesh
) -> None:
    sent = "e2e-ids:3f2a9c0d.1e7b_4a55"
    seen = {name: len(mesh.log_events(name)) for name in ("gateway", "scheduler")}
    _, call = speech.ListJobs.with_call(
        pb.ListJobsRequest(), metadata=[("x-request-id", sent)], timeout=20
    )
    assert ("x-request-id", sent) in list(call.trailing_metadata() or ())
    for name, method in (("gateway", LIST_JOBS), ("scheduler", SCHEDULER_LIST_JOBS)):
        finished = [
            e
            for e in new_lines(mesh, name, seen[name])
            if e.get("event") == "rpc_finished" and e.get("method") == method
        ]
        assert [e["request_id"] for e in finished] == [sent], name


def test_hostile_ids_never_reach_the_logs_of_any_hop(mesh: Mesh) -> None:
    hostile = b'x"}\n{"event": "rpc_finished", "job_id": "' + VICTIM_JOB.encode() + b'"}\x1b[2J'
    seen = {name: len(mesh.log_events(name)) for name in ("gateway", "scheduler")}
    # Other tests on the shared mesh log job ids of their own (f...f among them): look only at
    # what was written from here on.
    offsets = {name: len(mesh.logs(name)) for name in ("gateway", "scheduler")}
    metadata = [(b"x-request-id", hostile), (b"x-sayit-job-id", VICTIM_JOB.encode())]
    # A mesh that requires API keys (issue 17) names its development key: send it, so the call
    # reaches the scheduler too.
    key = getattr(mesh, "api_key", None)
    if key:
        metadata.append((b"authorization", f"Bearer {key}".encode()))
    ok = unary_call(mesh.gateway_addr, LIST_JOBS, b"", metadata)
    assert ok, "the gateway reset the call"
    gateway = new_lines(mesh, "gateway", seen["gateway"])
    [finished] = [
        e for e in gateway if e.get("event") == "rpc_finished" and e.get("method") == LIST_JOBS
    ]
    used = finished["request_id"]
    assert isinstance(used, str) and len(used) == 16, used
    assert finished["code"] in {"OK", "UNAUTHENTICATED"}
    scheduler = [
        e for e in new_lines(mesh, "scheduler", seen["scheduler"]) if e.get("request_id") == used
    ]
    if finished["code"] == "OK":  # the scheduler got the call under the replacement id
        assert [e["method"] for e in scheduler if e.get("event") == "rpc_finished"] == [
            SCHEDULER_LIST_JOBS
        ]
    for line in [*gateway, *scheduler]:
        assert line.get("job_id") != VICTIM_JOB, line
        assert "\x1b" not in str(line) and '"}' not in str(line.get("request_id")), line
    # The raw log files, not just their parsed lines: nothing escaped into a line of its own.
    for name in ("gateway", "scheduler"):
        written = mesh.logs(name)[offsets[name] :]
        assert VICTIM_JOB not in written, name
        assert "\x1b[2J" not in written, name


def test_grpc_client_refuses_what_the_raw_test_sends(speech: pb_grpc.SpeechServiceStub) -> None:
    """Why the raw HTTP/2 call above: grpc's own client would not send it."""
    with pytest.raises((ValueError, grpc.RpcError)):
        speech.ListJobs(pb.ListJobsRequest(), metadata=[("x-request-id", "a\nb")], timeout=10)
