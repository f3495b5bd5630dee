"""Channel behaviour against real gRPC servers on loopback: the client's service-config retry of
UNAVAILABLE, and round-robin balancing of the services' own channels.

The servers here are stand-ins that count calls and fail on purpose (the subject is the channel,
not the servicer); everything else is real gRPC.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from concurrent import futures

import grpc
import pytest
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from devsupport.processes import free_port
from sayit.common.v1 import job_pb2
from sayit.speech.v1 import speech_service_pb2 as pb
from sayit.speech.v1 import speech_service_pb2_grpc as pb_grpc
from services.client import ClientError, RetryPolicy, SayItClient
from services.client.polling import poll_interval
from services.client.retry import service_config
from services.common.channels import aio_channel, channel_options

JOB = "jobs/" + "a" * 32


class FlakySpeech(pb_grpc.SpeechServiceServicer):
    """Fails the first `failures` calls with `code`, then answers; records when calls came."""

    def __init__(self, failures: int, code: grpc.StatusCode = grpc.StatusCode.UNAVAILABLE):
        self.failures = failures
        self.code = code
        self.calls: list[float] = []
        self.lock = threading.Lock()

    def GetJob(self, request, context):  # type: ignore[no-untyped-def]
        with self.lock:
            self.calls.append(time.monotonic())
            attempt = len(self.calls)
        if attempt <= self.failures:
            context.abort(self.code, f"attempt {attempt} refused on purpose")
        return pb.GetJobResponse(
            job=job_pb2.TranscriptionJob(name=request.name, state=job_pb2.JOB_STATE_RUNNING)
        )


@pytest.fixture
def flaky():  # type: ignore[no-untyped-def]
    servers = []

    def start(failures: int, code: grpc.StatusCode = grpc.StatusCode.UNAVAILABLE):  # type: ignore[no-untyped-def]
        servicer = FlakySpeech(failures, code)
        server = grpc.server(futures.ThreadPoolExecutor(4))
        pb_grpc.add_SpeechServiceServicer_to_server(servicer, server)
        port = server.add_insecure_port("127.0.0.1:0")
        server.start()
        servers.append(server)
        return servicer, f"127.0.0.1:{port}"

    yield start
    for server in servers:
        server.stop(0)


FAST = RetryPolicy(
    max_attempts=5, initial_backoff_seconds=0.2, max_backoff_seconds=1.0, backoff_multiplier=2
)


def test_unavailable_is_retried_by_the_channel_until_it_succeeds(flaky) -> None:  # type: ignore[no-untyped-def]
    servicer, addr = flaky(failures=3)
    with SayItClient(addr, retry=FAST) as client:
        job = client.get_job(JOB)
    assert job.name == JOB and job.state == job_pb2.JOB_STATE_RUNNING
    assert len(servicer.calls) == 4  # three refusals, then the answer: one call for the caller


def test_retries_stop_at_max_attempts_with_the_last_error(flaky) -> None:  # type: ignore[no-untyped-def]
    servicer, addr = flaky(failures=100)
    with SayItClient(addr, retry=FAST) as client, pytest.raises(ClientError) as caught:
        client.get_job(JOB)
    assert caught.value.code == grpc.StatusCode.UNAVAILABLE
    assert "attempt 5 refused" in caught.value.message
    assert len(servicer.calls) == 5
    # Backoff: the attempts are spread out (random waits up to 0.2, 0.4, 0.8, 1.0 s), not fired
    # back to back.
    assert servicer.calls[-1] - servicer.calls[0] > 0.05


def test_other_codes_are_not_retried(flaky) -> None:  # type: ignore[no-untyped-def]
    servicer, addr = flaky(failures=1, code=grpc.StatusCode.NOT_FOUND)
    with SayItClient(addr, retry=FAST) as client, pytest.raises(ClientError) as caught:
        client.get_job(JOB)
    assert caught.value.code == grpc.StatusCode.NOT_FOUND
    assert len(servicer.calls) == 1


def test_a_gateway_that_is_not_up_yet_is_waited_for_by_retries() -> None:
    """Connection refused is UNAVAILABLE too: a call made while the server starts succeeds."""
    port = free_port()
    servicer = FlakySpeech(failures=0)
    server = grpc.server(futures.ThreadPoolExecutor(2))
    pb_grpc.add_SpeechServiceServicer_to_server(servicer, server)
    server.add_insecure_port(f"127.0.0.1:{port}")
    slow_start = threading.Timer(0.3, server.start)
    # Waits of up to 1, 2, 4 and 4 s: together almost surely longer than the 0.3 s start.
    patient = RetryPolicy(5, 1.0, 4.0, 2.0)
    try:
        slow_start.start()
        with SayItClient(f"127.0.0.1:{port}", retry=patient) as client:
            assert client.get_job(JOB).name == JOB
        assert len(servicer.calls) == 1
    finally:
        slow_start.cancel()
        server.stop(0)


def test_service_config_and_polling_schedule() -> None:
    config = service_config(RetryPolicy())
    method = config["methodConfig"][0]  # type: ignore[index]
    speech = "sayit.speech.v1.SpeechService"
    retried = {n["method"] for n in method["name"] if n["service"] == speech}
    # Only what is safe to repeat: reads, watches and CreateJob (sent with an idempotency key).
    assert retried == {"GetJob", "ListJobs", "WatchJob", "CreateJob"}
    assert {"service": speech} not in method["name"]  # not the whole service: no Transcribe
    assert config["retryThrottling"] == {"maxTokens": 10, "tokenRatio": 0.1}
    assert method["retryPolicy"]["retryableStatusCodes"] == ["UNAVAILABLE"]
    assert method["retryPolicy"]["maxAttempts"] <= 5  # gRPC's cap
    json.dumps(config)  # the channel takes it as JSON
    assert [poll_interval(t) for t in (0, 10, 29.9, 30, 31, 600)] == [3, 3, 3, 5, 5, 5]


async def test_service_channels_spread_calls_round_robin() -> None:
    """The scheduler's channel to direct transcribers: with several addresses behind one target
    (as a dns:/// name of a headless Service resolves to), calls go to all of them."""
    assert ("grpc.lb_policy_name", "round_robin") in channel_options(1024, "dns:///t:50053")
    assert ("grpc.lb_policy_name", "round_robin") not in channel_options(1024, "127.0.0.1:1")
    servers, counters = [], []
    for _ in range(2):
        server = grpc.aio.server()
        calls = {"n": 0}

        class Counting(health.aio.HealthServicer):
            async def Check(self, request, context, calls=calls):  # type: ignore[no-untyped-def]
                calls["n"] += 1
                return health_pb2.HealthCheckResponse(status=health_pb2.HealthCheckResponse.SERVING)

        health_pb2_grpc.add_HealthServicer_to_server(Counting(), server)
        port = server.add_insecure_port("127.0.0.1:0")
        await server.start()
        servers.append((server, port))
        counters.append(calls)
    target = "ipv4:" + ",".join(f"127.0.0.1:{port}" for _, port in servers)
    channel = aio_channel(target, 1024 * 1024)
    try:
        stub = health_pb2_grpc.HealthStub(channel)
        await channel.channel_ready()
        for _ in range(20):
            await stub.Check(health_pb2.HealthCheckRequest(), timeout=5)
        # pick_first would send all 20 to one server.
        assert all(c["n"] >= 5 for c in counters), counters
        assert sum(c["n"] for c in counters) == 20
    finally:
        await channel.close()
        await asyncio.gather(*(server.stop(0) for server, _ in servers))


async def test_a_restarted_server_is_reachable_again_within_seconds() -> None:
    """gRPC's default reconnect backoff grows to 120 s; after a peer restarts, SayIt's channels
    must reach it again in a few seconds, not minutes (a gateway must not stay cut off from a
    restarted scheduler)."""
    port = free_port()

    async def start() -> grpc.aio.Server:
        server = grpc.aio.server()
        health_pb2_grpc.add_HealthServicer_to_server(health.aio.HealthServicer(), server)
        server.add_insecure_port(f"127.0.0.1:{port}")
        await server.start()
        return server

    server = await start()
    channel = aio_channel(f"127.0.0.1:{port}", 1024 * 1024)
    stub = health_pb2_grpc.HealthStub(channel)
    try:
        await stub.Check(health_pb2.HealthCheckRequest(), timeout=5)
        await server.stop(0)
        # Several failed attempts while the server is down push the backoff up.
        for _ in range(8):
            with pytest.raises(grpc.aio.AioRpcError):
                await stub.Check(health_pb2.HealthCheckRequest(), timeout=1)
            await asyncio.sleep(0.5)
        server = await start()
        restarted = asyncio.get_running_loop().time()
        while True:
            try:
                await stub.Check(health_pb2.HealthCheckRequest(), timeout=1)
                break
            except grpc.aio.AioRpcError:
                assert asyncio.get_running_loop().time() - restarted < 10, "still unreachable"
                await asyncio.sleep(0.1)
    finally:
        await channel.close()
        await server.stop(0)
