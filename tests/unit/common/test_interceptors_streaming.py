"""services.common.interceptors.ServiceInterceptor on streaming calls, in each direction, and on
calls cancelled or out of time. In process: a grpc.aio server with tiny bytes-in/bytes-out
handlers (no protos, tests.support.interceptor_service), a real client channel, and the
structured log lines captured from stderr."""

from __future__ import annotations

import grpc
import grpc.aio
import pytest

from tests.support.interceptor_calls import assert_finished, has_rich_status, read_stream
from tests.support.interceptor_service import SERVICE
from tests.support.log_capture import LogCapture


async def test_stream_ok(channel: grpc.aio.Channel, logged: LogCapture) -> None:
    items, error = await read_stream(channel, "Stream", b"ok")
    assert (items, error) == ([b"one", b"two", b"three"], None)
    [line] = await logged.finished()
    assert_finished(line, "Stream", "OK")


async def test_stream_items_then_not_found(channel: grpc.aio.Channel, logged: LogCapture) -> None:
    items, error = await read_stream(channel, "Stream", b"notfound")
    assert items == [b"one", b"two"]
    assert error is not None
    assert error.code() == grpc.StatusCode.NOT_FOUND
    assert error.details() == "the job was deleted while streaming"
    [line] = await logged.finished()
    assert_finished(line, "Stream", "NOT_FOUND")


async def test_stream_crash_is_internal(channel: grpc.aio.Channel, logged: LogCapture) -> None:
    items, error = await read_stream(channel, "Stream", b"crash", request_id="req-stream-9")
    assert items == [b"one", b"two"]
    assert error is not None
    assert error.code() == grpc.StatusCode.INTERNAL
    assert error.details() == "internal error (request id req-stream-9)"
    [line] = await logged.finished()
    assert_finished(line, "Stream", "INTERNAL")
    [crash] = logged.events("rpc_crashed")
    assert "KeyError: 'secret key'" in crash["exception"]


async def test_writer_style_stream(channel: grpc.aio.Channel, logged: LogCapture) -> None:
    items, error = await read_stream(channel, "Writer", b"ok")
    assert (items, error) == ([b"a", b"b"], None)
    [line] = await logged.finished()
    assert_finished(line, "Writer", "OK")


async def test_writer_style_stream_error(channel: grpc.aio.Channel, logged: LogCapture) -> None:
    items, error = await read_stream(channel, "Writer", b"notfound")
    assert items == [b"a", b"b"]
    assert error is not None
    assert (error.code(), error.details()) == (grpc.StatusCode.NOT_FOUND, "writer lost its job")
    [line] = await logged.finished()
    assert_finished(line, "Writer", "NOT_FOUND")


async def test_client_streaming(channel: grpc.aio.Channel, logged: LogCapture) -> None:
    upload = channel.stream_unary(f"/{SERVICE}/Upload")
    assert await upload(iter([b"a", b"b", b"c"]), timeout=10) == b"a+b+c"
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await upload(iter([b"a", b"bad"]), timeout=10)
    assert (raised.value.code(), raised.value.details()) == (
        grpc.StatusCode.INVALID_ARGUMENT,
        "a bad chunk",
    )
    assert has_rich_status(raised.value)
    ok, failed = await logged.finished(2)
    assert_finished(ok, "Upload", "OK")
    assert_finished(failed, "Upload", "INVALID_ARGUMENT")


async def test_bidi_streaming(channel: grpc.aio.Channel, logged: LogCapture) -> None:
    echo = channel.stream_stream(f"/{SERVICE}/Echo")
    assert [item async for item in echo(iter([b"ab", b"cd"]), timeout=10)] == [b"ba", b"dc"]
    items = []
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        async for item in echo(iter([b"xy", b"bad", b"zz"]), timeout=10):
            items.append(item)
    assert items == [b"yx"]
    assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    ok, failed = await logged.finished(2)
    assert_finished(ok, "Echo", "OK")
    assert_finished(failed, "Echo", "INVALID_ARGUMENT")


async def test_client_cancel_is_logged_as_cancelled(
    channel: grpc.aio.Channel, logged: LogCapture
) -> None:
    call = channel.unary_stream(f"/{SERVICE}/Forever")(
        b"", metadata=[("x-request-id", "req-cancel")], timeout=10
    )
    assert await call.read() == b"tick"
    call.cancel()
    [line] = await logged.finished()
    assert_finished(line, "Forever", "CANCELLED")
    assert line["request_id"] == "req-cancel"
    assert await call.code() == grpc.StatusCode.CANCELLED


async def test_deadline_is_logged_as_deadline_exceeded(
    channel: grpc.aio.Channel, logged: LogCapture
) -> None:
    items, error = await read_stream(channel, "Forever", b"", deadline=0.2)
    assert items == [b"tick"]
    assert error is not None
    assert error.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    [line] = await logged.finished()
    assert_finished(line, "Forever", "DEADLINE_EXCEEDED")
