"""A gateway whose quota store (its own redis-server, which the test kills) fails: refused with
UNAVAILABLE, an actionable message and RetryInfo by default; let through, counted and logged with
SAYIT_QUOTA_FAIL_OPEN=true; served again once the store is back. The gateways are replicas
beside the session's edge mesh (tests/support/edge.py), sharing its scheduler."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest

from devsupport.mesh import RedisServer
from devsupport.processes import ServiceProcess, free_port
from sayit.speech.v1 import speech_service_pb2 as pb
from services.gateway.store_outage import REFUSED_MESSAGE
from tests.e2e.test_edge_limits import details
from tests.support.edge import EdgeMesh
from tests.support.prometheus import scrape, value
from tests.support.speech import rpc_error

pytestmark = pytest.mark.model

METRIC = "sayit_gateway_quota_store_errors_total"


def replica(edge: EdgeMesh, directory: Path, store: RedisServer, **env: str) -> ServiceProcess:
    """A gateway beside the edge mesh's, on its own quota store."""
    addr = f"127.0.0.1:{free_port()}"
    process = ServiceProcess(
        "services.gateway",
        {
            **edge.gateway_env(mutual=True),
            "SAYIT_GATEWAY_ADDR": addr,
            "SAYIT_GATEWAY_METRICS_ADDR": f"127.0.0.1:{free_port()}",
            "SAYIT_SCHEDULER_ADDR": edge.mesh.scheduler_addr,
            "SAYIT_API_KEYS_FILE": str(edge.keys_file),
            "SAYIT_REDIS_URL": store.url_for("gateway"),  # its own Redis user, as deployed
            **env,
        },
        directory / "gateway.log",
        addr=addr,
        tls=edge.certs.client_tls("operator"),
    ).start()
    process.wait_serving(60)
    return process


@pytest.fixture
def store(tmp_path: Path) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path / "quota-redis").start()
    yield server
    server.stop()


def events(process: ServiceProcess, event: str) -> list[dict[str, object]]:
    lines = process.log_path.read_text(errors="replace").splitlines()
    return [e for e in map(json.loads, filter(_is_json, lines)) if e.get("event") == event]


def _is_json(line: str) -> bool:
    return line.startswith("{")


def list_jobs(edge: EdgeMesh, addr: str, request_id: str) -> pb.ListJobsResponse:
    return edge.stub(addr).ListJobs(
        pb.ListJobsRequest(),
        metadata=[*edge.auth("acme"), ("x-request-id", request_id)],
        timeout=10,
    )


def test_quota_store_down_refuses_with_retry_info_until_it_is_back(
    edge: EdgeMesh, store: RedisServer, tmp_path: Path
) -> None:
    gateway = replica(edge, tmp_path, store)
    metrics_addr = gateway.env["SAYIT_GATEWAY_METRICS_ADDR"]
    try:
        list_jobs(edge, gateway.addr or "", "before-outage")
        store.kill()
        started = time.monotonic()
        error = rpc_error(
            edge.stub(gateway.addr).ListJobs,
            pb.ListJobsRequest(),
            metadata=[*edge.auth("acme"), ("x-request-id", "during-outage")],
            timeout=10,
        )
        assert time.monotonic() - started < 5, "a dead store must be noticed fast"
        assert error.code() == grpc.StatusCode.UNAVAILABLE
        assert error.details() == f"{REFUSED_MESSAGE} (request id during-outage)"
        assert str(store.port) not in error.details() and "redis" not in error.details().lower()
        retry = details(error)["RetryInfo"].retry_delay.ToTimedelta().total_seconds()  # type: ignore[attr-defined]
        assert retry == 2.0
        # Streams and uploads are refused the same way, before anything is watched or read.
        watch = rpc_error(
            lambda: list(
                edge.stub(gateway.addr).WatchJob(
                    pb.WatchJobRequest(name="jobs/" + "0" * 32),
                    metadata=edge.auth("acme"),
                    timeout=10,
                )
            )
        )
        assert watch.code() == grpc.StatusCode.UNAVAILABLE
        assert REFUSED_MESSAGE in watch.details()
        upload = rpc_error(
            edge.stub(gateway.addr).UploadJob,
            iter(
                [
                    pb.UploadJobRequest(header=pb.UploadJobHeader(filename="a.wav")),
                    pb.UploadJobRequest(audio_chunk=b"\0" * 4096),
                ]
            ),
            metadata=edge.auth("acme"),
            timeout=10,
        )
        assert upload.code() == grpc.StatusCode.UNAVAILABLE
        assert REFUSED_MESSAGE in upload.details()
        samples = scrape(metrics_addr)
        assert value(samples, METRIC, outcome="refused") == 3
        assert value(samples, METRIC, outcome="let_through") == 0
        [line, *_] = events(gateway, "quota_store_failed")
        assert line["outcome"] == "refused" and line["request_id"] == "during-outage"

        store.start()  # the same port: the gateway's pool reconnects by itself
        deadline = time.monotonic() + 15
        while True:
            try:
                list_jobs(edge, gateway.addr or "", "after-outage")
                break
            except grpc.RpcError as again:
                assert again.code() == grpc.StatusCode.UNAVAILABLE
                assert time.monotonic() < deadline, "calls never succeeded after Redis came back"
                time.sleep(0.2)
    finally:
        gateway.stop()


def test_fail_open_lets_calls_through_and_counts_them(
    edge: EdgeMesh, store: RedisServer, tmp_path: Path
) -> None:
    gateway = replica(edge, tmp_path, store, SAYIT_QUOTA_FAIL_OPEN="true")
    metrics_addr = gateway.env["SAYIT_GATEWAY_METRICS_ADDR"]
    try:
        store.kill()
        for index in range(3):
            list_jobs(edge, gateway.addr or "", f"open-{index}")
        samples = scrape(metrics_addr)
        assert value(samples, METRIC, outcome="let_through") == 3
        assert value(samples, METRIC, outcome="refused") == 0
        assert events(gateway, "quota_fail_open")
        # One line for the three failures: the log is rate-limited.
        [line] = events(gateway, "quota_store_failed")
        assert line["outcome"] == "let_through"
        # The key is still checked: failing open is about limits, never about who calls.
        refused = rpc_error(
            edge.stub(gateway.addr).ListJobs,
            pb.ListJobsRequest(),
            metadata=[("authorization", "Bearer not-a-key")],
            timeout=10,
        )
        assert refused.code() == grpc.StatusCode.UNAUTHENTICATED
    finally:
        gateway.stop()
