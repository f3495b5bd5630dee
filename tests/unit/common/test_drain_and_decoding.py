"""The common interceptor's drain (new calls refused with UNAVAILABLE while calls in flight are
counted and finish) and its handling of request bytes that are not the method's message, on an
in-process grpc.aio server with a real protobuf request type."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import grpc
import grpc.aio
import pytest_asyncio

from sayit.speech.v1 import speech_service_pb2 as pb
from services.common.interceptors import Drain, ServiceInterceptor

SERVICE = "sayit.test.v1.DrainService"


async def get(request: pb.GetJobRequest, context: grpc.aio.ServicerContext) -> pb.GetJobResponse:
    if request.name == "slow":
        await asyncio.sleep(0.5)
    return pb.GetJobResponse(job={"name": request.name})


async def watch(
    request: pb.WatchJobRequest, context: grpc.aio.ServicerContext
) -> AsyncIterator[pb.WatchJobResponse]:
    for sequence in range(3):
        yield pb.WatchJobResponse(event={"sequence": sequence})


class Server:
    def __init__(self) -> None:
        self.drain = Drain()
        self.server = grpc.aio.server(interceptors=[ServiceInterceptor(self.drain)])
        handlers = {
            "Get": grpc.unary_unary_rpc_method_handler(
                get,
                request_deserializer=pb.GetJobRequest.FromString,
                response_serializer=pb.GetJobResponse.SerializeToString,
            ),
            "Watch": grpc.unary_stream_rpc_method_handler(
                watch,
                request_deserializer=pb.WatchJobRequest.FromString,
                response_serializer=pb.WatchJobResponse.SerializeToString,
            ),
        }
        self.server.add_generic_rpc_handlers(
            [grpc.method_handlers_generic_handler(SERVICE, handlers)]
        )
        self.port = self.server.add_insecure_port("127.0.0.1:0")


@pytest_asyncio.fixture
async def server() -> AsyncIterator[Server]:
    served = Server()
    await served.server.start()
    yield served
    await served.server.stop(0)


def raw(channel: grpc.aio.Channel, method: str) -> grpc.aio.UnaryUnaryMultiCallable:
    return channel.unary_unary(f"/{SERVICE}/{method}")


async def test_bytes_that_are_not_the_message_are_invalid_argument(server: Server) -> None:
    async with grpc.aio.insecure_channel(f"127.0.0.1:{server.port}") as channel:
        for payload, reason in (
            (b"\x0a\x02\xff\xfe", "String field had bad UTF-8"),
            (b"\xff\xff\xff", "Wire format was corrupt"),
            (b"\x0a\x05ab", "Wire format was corrupt"),
        ):
            try:
                await raw(channel, "Get")(payload, timeout=5)
            except grpc.aio.AioRpcError as error:
                assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
                assert "not a valid protobuf message for this method" in (error.details() or "")
                assert reason in (error.details() or "")
            else:
                raise AssertionError("accepted garbage")
        stream = channel.unary_stream(f"/{SERVICE}/Watch")
        try:
            [item async for item in stream(b"\xff\xff", timeout=5)]
        except grpc.aio.AioRpcError as error:
            assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
        else:
            raise AssertionError("accepted garbage")
        # A well-formed request still works.
        reply = await raw(channel, "Get")(pb.GetJobRequest(name="x").SerializeToString())
        assert pb.GetJobResponse.FromString(reply).job.name == "x"


async def test_draining_refuses_new_calls_and_waits_for_those_in_flight(server: Server) -> None:
    async with grpc.aio.insecure_channel(f"127.0.0.1:{server.port}") as channel:
        slow = asyncio.ensure_future(
            raw(channel, "Get")(pb.GetJobRequest(name="slow").SerializeToString(), timeout=5)
        )
        while server.drain.in_flight == 0:  # noqa: ASYNC110 (polling another task's counter)
            await asyncio.sleep(0.01)
        server.drain.start()
        try:
            await raw(channel, "Get")(pb.GetJobRequest(name="new").SerializeToString(), timeout=5)
        except grpc.aio.AioRpcError as error:
            assert error.code() == grpc.StatusCode.UNAVAILABLE
            assert "shutting down" in (error.details() or "")
        else:
            raise AssertionError("a new call was accepted while draining")
        assert server.drain.in_flight == 1
        await asyncio.wait_for(server.drain.wait_idle(), 5)
        assert pb.GetJobResponse.FromString(await slow).job.name == "slow"
        assert server.drain.in_flight == 0


def test_probes_are_neither_counted_nor_refused() -> None:
    drain = Drain()
    drain.start()
    assert drain.begin("/grpc.health.v1.Health/Check")
    assert drain.in_flight == 0
    assert not drain.begin("/sayit.speech.v1.SpeechService/GetJob")
