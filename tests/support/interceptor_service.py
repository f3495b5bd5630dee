"""A tiny gRPC service for the interceptor tests: bytes-in/bytes-out handlers (no protos) that
succeed, fail, crash or stream as the request asks."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import grpc
import grpc.aio

from services.common.errors import InvalidArgument, NotFound, ResourceExhausted
from services.common.status import to_status

SERVICE = "sayit.test.v1.TestService"
# What gRPC itself says when the peer is down.
GRPC_CONNECT_FAILURE = (
    "failed to connect to all addresses; last error: UNKNOWN: ipv4:127.0.0.1:1: "
    "Failed to connect to remote host: Connection refused"
)


def downstream(code: grpc.StatusCode, details: str) -> grpc.aio.AioRpcError:
    """A status gRPC made itself (no google.rpc.Status trailer)."""
    return grpc.aio.AioRpcError(
        code, grpc.aio.Metadata(), grpc.aio.Metadata(), details=details, debug_error_string=""
    )


def written(error: NotFound | ResourceExhausted) -> grpc.aio.AioRpcError:
    """A status a SayIt service wrote (with its google.rpc.Status trailer)."""
    status = to_status(error)
    return grpc.aio.AioRpcError(
        status.code,
        grpc.aio.Metadata(),
        grpc.aio.Metadata(*status.trailing_metadata),
        details=status.details,
        debug_error_string="",
    )


async def unary(request: bytes, context: grpc.aio.ServicerContext) -> bytes:
    action = request.decode()
    if action == "ok":
        return b"pong"
    if action == "slow":
        await asyncio.sleep(0.05)
        return b"slept"
    if action == "invalid":
        raise InvalidArgument("unknown language code 'xx'", field="config.language_code")
    if action == "korean":
        raise InvalidArgument("언어 코드가 잘못되었습니다", field="config.language_code")
    if action == "notfound":
        raise NotFound("jobs/42 not found")
    if action == "exhausted":
        raise ResourceExhausted("all 2 transcription slots are busy", retry_after_seconds=2)
    if action == "crash":
        raise ValueError("secret internals: password=hunter2")
    if action == "down-unavailable":
        raise downstream(grpc.StatusCode.UNAVAILABLE, GRPC_CONNECT_FAILURE)
    if action == "down-notfound":
        raise written(NotFound("jobs/7 not found"))
    if action == "down-notfound-raw":
        raise downstream(grpc.StatusCode.NOT_FOUND, "Method not found at ipv4:10.0.0.2:50052")
    if action == "down-unknown":
        raise downstream(grpc.StatusCode.UNKNOWN, "Exception calling application: boom")
    if action == "down-data-loss":
        raise downstream(grpc.StatusCode.DATA_LOSS, "checksum mismatch")
    if action == "abort":
        await context.abort(grpc.StatusCode.PERMISSION_DENIED, "not your job")
    if action == "set-code":
        context.set_code(grpc.StatusCode.FAILED_PRECONDITION)
        context.set_details("job is not finished")
        return b""
    raise AssertionError(f"unknown action {action!r}")


def sync_unary(request: bytes, context: grpc.aio.ServicerContext) -> bytes:
    if request == b"fail":
        raise NotFound("sync handler: nothing here")
    return request.upper()


async def stream(request: bytes, context: grpc.aio.ServicerContext) -> AsyncIterator[bytes]:
    action = request.decode()
    yield b"one"
    yield b"two"
    if action == "notfound":
        raise NotFound("the job was deleted while streaming")
    if action == "crash":
        raise KeyError("secret key")
    yield b"three"


async def forever(request: bytes, context: grpc.aio.ServicerContext) -> AsyncIterator[bytes]:
    yield b"tick"
    await asyncio.sleep(30)
    yield b"never"


async def writer(request: bytes, context: grpc.aio.ServicerContext) -> None:
    await context.write(b"a")
    await context.write(b"b")
    if request == b"notfound":
        raise NotFound("writer lost its job")


async def stream_unary(requests: AsyncIterator[bytes], context: grpc.aio.ServicerContext) -> bytes:
    parts = [part async for part in requests]
    if b"bad" in parts:
        raise InvalidArgument("a bad chunk", field="chunks")
    return b"+".join(parts)


async def stream_stream(
    requests: AsyncIterator[bytes], context: grpc.aio.ServicerContext
) -> AsyncIterator[bytes]:
    async for part in requests:
        if part == b"bad":
            raise InvalidArgument("a bad chunk", field="chunks")
        yield part[::-1]


async def health_check(request: bytes, context: grpc.aio.ServicerContext) -> bytes:
    if request == b"fail":
        raise NotFound("unknown service")
    return b"SERVING"


def generic_handlers() -> list[grpc.GenericRpcHandler]:
    return [
        grpc.method_handlers_generic_handler(
            SERVICE,
            {
                "Unary": grpc.unary_unary_rpc_method_handler(unary),
                "SyncUnary": grpc.unary_unary_rpc_method_handler(sync_unary),
                "Stream": grpc.unary_stream_rpc_method_handler(stream),
                "Writer": grpc.unary_stream_rpc_method_handler(writer),
                "Forever": grpc.unary_stream_rpc_method_handler(forever),
                "Upload": grpc.stream_unary_rpc_method_handler(stream_unary),
                "Echo": grpc.stream_stream_rpc_method_handler(stream_stream),
            },
        ),
        # Only the method name matters for the interceptor's "quiet" probes.
        grpc.method_handlers_generic_handler(
            "grpc.health.v1.Health", {"Check": grpc.unary_unary_rpc_method_handler(health_check)}
        ),
    ]
