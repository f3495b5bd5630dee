"""Caps on open streams, on a real gateway and scheduler over gRPC with a real Redis: a tenant
over its cap, and a server over its own, get RESOURCE_EXHAUSTED with a retry hint and a message
naming the cap, while other tenants' streams and calls still get in (issue 16, item 2).

No transcriber runs: the jobs are queued and stay queued, so their WatchJob streams stay open.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import grpc
import pytest
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from devsupport import topology
from devsupport.mesh import RedisServer
from devsupport.processes import ServiceProcess, channel, free_port
from sayit.common.v1 import job_pb2
from sayit.scheduler.v1 import scheduler_service_pb2 as spb
from sayit.scheduler.v1 import scheduler_service_pb2_grpc as spb_grpc
from sayit.speech.v1 import speech_service_pb2 as pb
from sayit.speech.v1 import speech_service_pb2_grpc as pb_grpc
from services.common import pki
from services.gateway.keys import hash_key, new_key
from tests.support.encode import silent_flac

pytestmark = pytest.mark.redis

PER_TENANT = 3
GATEWAY_STREAMS = 5
SCHEDULER_STREAMS = GATEWAY_STREAMS + 1
TENANTS = ("acme", "globex", "initech")


@dataclass
class Caps:
    gateway: pb_grpc.SpeechServiceStub
    scheduler: spb_grpc.SchedulerServiceStub
    keys: dict[str, str]

    def auth(self, tenant: str) -> list[tuple[str, str]]:
        return [("authorization", f"Bearer {self.keys[tenant]}")]

    def watch(self, tenant: str, job: job_pb2.TranscriptionJob) -> Iterator[pb.WatchJobResponse]:
        """An open WatchJob stream (its `accepted` event read, so the gateway counts it)."""
        stream = self.gateway.WatchJob(
            pb.WatchJobRequest(name=job.name), metadata=self.auth(tenant), timeout=60
        )
        assert next(stream).event.WhichOneof("kind") == "accepted"
        return stream


def write_keys(path: Path) -> dict[str, str]:
    keys = {tenant: new_key() for tenant in TENANTS}
    path.write_text(
        "".join(
            f'[[keys]]\nname = "{t}"\nsha256 = "{hash_key(k)}"\ntenant = "{t}"\nroles = ["all"]\n\n'
            for t, k in keys.items()
        )
    )
    return keys


@pytest.fixture(scope="module")
def caps(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Caps]:
    directory = tmp_path_factory.mktemp("stream-caps")
    redis_server = RedisServer(directory / "redis").start()
    keys = write_keys(directory / "keys.toml")
    scheduler_addr = f"127.0.0.1:{free_port()}"
    gateway_addr = f"127.0.0.1:{free_port()}"
    common = {"SAYIT_REDIS_URL": redis_server.url}
    certs = pki.ensure(directory / "pki")
    scheduler = ServiceProcess(
        "services.scheduler",
        {
            **common,
            **topology.tls_env(certs, topology.SCHEDULER),
            "SAYIT_SCHEDULER_ADDR": scheduler_addr,
            "SAYIT_TRANSCRIBER_ADDR": f"127.0.0.1:{free_port()}",  # nothing: jobs stay queued
            "SAYIT_MAX_OPEN_STREAMS": str(SCHEDULER_STREAMS),
        },
        directory / "scheduler.log",
        addr=scheduler_addr,
        tls=certs.client_tls("operator"),
    )
    gateway = ServiceProcess(
        "services.gateway",
        {
            **common,
            **topology.tls_env(certs, topology.GATEWAY),
            "SAYIT_GATEWAY_ADDR": gateway_addr,
            "SAYIT_SCHEDULER_ADDR": scheduler_addr,
            "SAYIT_API_KEYS_FILE": str(directory / "keys.toml"),
            "SAYIT_TENANT_REQUESTS_PER_SECOND": "0",
            "SAYIT_MAX_OPEN_STREAMS": str(GATEWAY_STREAMS),
            "SAYIT_MAX_STREAMS_PER_TENANT": str(PER_TENANT),
        },
        directory / "gateway.log",
        addr=gateway_addr,
    )
    try:
        scheduler.start().wait_serving(60)
        gateway.start().wait_serving(60)
        yield Caps(
            pb_grpc.SpeechServiceStub(channel(gateway_addr)),
            # Straight to the scheduler, as the gateway (the only service it accepts).
            spb_grpc.SchedulerServiceStub(channel(scheduler_addr, certs.client_tls("gateway"))),
            keys,
        )
    finally:
        gateway.stop()
        scheduler.stop()
        redis_server.stop()


def refusal(call: object, *args: object, **kwargs: object) -> tuple[grpc.RpcError, float]:
    """The error of a stream that must be refused, and its RetryInfo delay in seconds."""
    try:
        next(iter(call(*args, **kwargs)))  # type: ignore[operator]
    except grpc.RpcError as error:
        status = rpc_status.from_call(error)  # type: ignore[arg-type]
        assert status is not None, f"no google.rpc.Status in {error}"
        for detail in status.details:
            if detail.Is(error_details_pb2.RetryInfo.DESCRIPTOR):
                info = error_details_pb2.RetryInfo()
                detail.Unpack(info)
                return error, info.retry_delay.ToNanoseconds() / 1e9
        raise AssertionError(f"no RetryInfo in {error.details()!r}") from error
    raise AssertionError("the stream was not refused")


def test_stream_caps_refuse_with_retry_info_and_spare_other_tenants(caps: Caps) -> None:
    audio = silent_flac(2.0)
    jobs = {
        t: caps.gateway.CreateJob(
            pb.CreateJobRequest(audio={"content": audio, "filename": "a.flac"}),
            metadata=caps.auth(t),
            timeout=30,
        ).job
        for t in TENANTS
    }
    open_streams = [caps.watch("acme", jobs["acme"]) for _ in range(PER_TENANT)]

    # acme is at its cap; its next stream is refused, naming the cap.
    error, delay = refusal(
        caps.gateway.WatchJob,
        pb.WatchJobRequest(name=jobs["acme"].name),
        metadata=caps.auth("acme"),
        timeout=30,
    )
    assert error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert f"tenant 'acme' already has {PER_TENANT} open streams" in error.details()
    assert "per tenant" in error.details() and delay > 0

    # Another tenant still gets in, up to the gateway's own cap...
    open_streams += [caps.watch("globex", jobs["globex"]) for _ in range(2)]
    error, delay = refusal(
        caps.gateway.WatchJob,
        pb.WatchJobRequest(name=jobs["initech"].name),
        metadata=caps.auth("initech"),
        timeout=30,
    )
    assert error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert f"this server already has {GATEWAY_STREAMS} open streams" in error.details()
    assert delay > 0
    # ...and unary calls are not streams: they are still served.
    reply = caps.gateway.GetJob(
        pb.GetJobRequest(name=jobs["initech"].name), metadata=caps.auth("initech"), timeout=30
    )
    assert reply.job.state == job_pb2.JOB_STATE_QUEUED

    # The scheduler counts the gateway's streams against its own cap.
    direct = caps.scheduler.WatchJob(
        spb.WatchJobRequest(tenant="initech", job_id=jobs["initech"].name.removeprefix("jobs/")),
        timeout=60,
    )
    assert next(direct).event.WhichOneof("kind") == "accepted"
    error, _ = refusal(
        caps.scheduler.WatchJob,
        spb.WatchJobRequest(tenant="initech", job_id=jobs["initech"].name.removeprefix("jobs/")),
        timeout=30,
    )
    assert error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert f"this server already has {SCHEDULER_STREAMS} open streams" in error.details()

    # A closed stream frees its place (once the server has seen it close).
    open_streams.pop(0).cancel()  # type: ignore[attr-defined]
    direct.cancel()  # type: ignore[attr-defined]
    deadline = time.monotonic() + 10
    while True:
        try:
            open_streams.append(caps.watch("initech", jobs["initech"]))
            break
        except grpc.RpcError as refused:
            assert refused.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
            assert time.monotonic() < deadline, "a closed stream never freed its place"
            time.sleep(0.1)
    for stream in open_streams:
        stream.cancel()  # type: ignore[attr-defined]
