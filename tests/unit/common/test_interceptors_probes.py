"""services.common.interceptors.ServiceInterceptor on health probes (quiet unless they fail) and
on unknown methods. In process: a grpc.aio server with tiny bytes-in/bytes-out handlers (no
protos, tests.support.interceptor_service), a real client channel, and the structured log lines
captured from stderr."""

from __future__ import annotations

import grpc
import grpc.aio
import pytest

from tests.support.interceptor_calls import assert_finished, call_unary
from tests.support.interceptor_service import SERVICE
from tests.support.log_capture import LogCapture


async def test_health_probes_are_quiet_unless_they_fail(
    channel: grpc.aio.Channel, logged: LogCapture
) -> None:
    check = channel.unary_unary("/grpc.health.v1.Health/Check")
    assert await check(b"", timeout=10) == b"SERVING"
    with pytest.raises(grpc.aio.AioRpcError):
        await check(b"fail", timeout=10)
    [line] = await logged.finished()
    assert_finished(line, "/grpc.health.v1.Health/Check", "NOT_FOUND")


async def test_debug_level_shows_quiet_probes(
    channel: grpc.aio.Channel, logged: LogCapture
) -> None:
    logged.configure("debug")
    check = channel.unary_unary("/grpc.health.v1.Health/Check")
    assert await check(b"", metadata=[("x-request-id", "req-probe")], timeout=10) == b"SERVING"
    [line] = await logged.finished()
    assert line["level"] == "debug"
    assert (line["method"], line["code"], line["request_id"]) == (
        "/grpc.health.v1.Health/Check",
        "OK",
        "req-probe",
    )


async def test_unknown_method_is_unimplemented(
    channel: grpc.aio.Channel, logged: LogCapture
) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await channel.unary_unary(f"/{SERVICE}/Missing")(b"", timeout=10)
    assert raised.value.code() == grpc.StatusCode.UNIMPLEMENTED
    # No handler, nothing to wrap: the only line is the next call's.
    assert await call_unary(channel, "ok", request_id="req-after") == b"pong"
    [line] = await logged.finished()
    assert line["request_id"] == "req-after"
