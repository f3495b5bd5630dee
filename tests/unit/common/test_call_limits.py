"""The call caps (services.common.call_limits) on a real in-process gRPC server: a call over the
server's cap of concurrent calls is refused RESOURCE_EXHAUSTED with RetryInfo, health checks are
never counted, and a finished call frees its place."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import grpc
import grpc.aio
import pytest_asyncio
from google.rpc import error_details_pb2
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from services.common.call_limits import CallCaps, CallLimits
from services.common.interceptors import ServiceInterceptor
from tests.support.interceptor_calls import rich_status

SERVICE = "sayit.test.v1.CapsService"
CAP = 2


class Gate:
    """A unary handler that holds every call until released."""

    def __init__(self) -> None:
        self.open = asyncio.Event()
        self.full = asyncio.Event()
        self.waiting = 0

    async def hold(self, request: bytes, context: grpc.aio.ServicerContext) -> bytes:
        self.waiting += 1
        if self.waiting == CAP:
            self.full.set()
        await self.open.wait()
        return b"done"


@pytest_asyncio.fixture
async def served() -> AsyncIterator[tuple[grpc.aio.Channel, Gate]]:
    gate = Gate()
    server = grpc.aio.server(
        interceptors=[ServiceInterceptor(), CallLimits(CallCaps(max_rpcs=CAP, max_streams=CAP))]
    )
    handler = grpc.unary_unary_rpc_method_handler(gate.hold)
    server.add_generic_rpc_handlers(
        [grpc.method_handlers_generic_handler(SERVICE, {"Hold": handler})]
    )
    health_servicer = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            yield channel, gate
    finally:
        gate.open.set()
        await server.stop(None)


async def test_a_call_over_the_cap_is_refused_with_retry_info_and_probes_pass(
    served: tuple[grpc.aio.Channel, Gate],
) -> None:
    channel, gate = served
    hold = channel.unary_unary(f"/{SERVICE}/Hold")
    held = [asyncio.ensure_future(hold(b"", timeout=10)) for _ in range(CAP)]
    await asyncio.wait_for(gate.full.wait(), 10)

    try:
        await hold(b"", timeout=10)
        raise AssertionError("a call over the cap was served")
    except grpc.aio.AioRpcError as error:
        assert error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert error.details() == f"this server is already running {CAP} calls, its limit; " + (
            "retry in 1 s"
        )
        retry = [
            d for d in rich_status(error).details if d.Is(error_details_pb2.RetryInfo.DESCRIPTOR)
        ]
        assert len(retry) == 1

    # Health checks are not work: never counted, never refused.
    reply = await health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest())
    assert reply.status == health_pb2.HealthCheckResponse.SERVING

    gate.open.set()
    assert await asyncio.gather(*held) == [b"done"] * CAP
    # The finished calls freed their places.
    assert await hold(b"", timeout=10) == b"done"
