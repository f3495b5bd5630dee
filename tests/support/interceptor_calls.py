"""Calls to the interceptor tests' service, and checks of what they returned and logged."""

from __future__ import annotations

import re
from typing import Any

import grpc
import grpc.aio
import pytest
from google.rpc import status_pb2

from tests.support.interceptor_service import SERVICE

DETAILS_KEY = "grpc-status-details-bin"


def rich_status(error: grpc.aio.AioRpcError) -> status_pb2.Status:
    values = [v for k, v in (error.trailing_metadata() or ()) if k == DETAILS_KEY]
    assert len(values) == 1, error.trailing_metadata()
    return status_pb2.Status.FromString(values[0])


def has_rich_status(error: grpc.aio.AioRpcError) -> bool:
    return any(k == DETAILS_KEY for k, _ in (error.trailing_metadata() or ()))


async def call_unary(
    channel: grpc.aio.Channel, action: str, *, request_id: str | None = None, **kw: Any
) -> bytes:
    metadata = [("x-request-id", request_id)] if request_id else []
    metadata += list(kw.pop("metadata", []))
    method = kw.pop("method", "Unary")
    result: bytes = await channel.unary_unary(f"/{SERVICE}/{method}")(
        action.encode(), metadata=metadata, timeout=10
    )
    return result


async def failing(channel: grpc.aio.Channel, action: str, **kw: Any) -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await call_unary(channel, action, **kw)
    return raised.value


def assert_finished(line: dict[str, Any], method: str, code: str) -> None:
    assert line["event"] == "rpc_finished"
    assert line["method"] == f"/{SERVICE}/{method}" if not method.startswith("/") else method
    assert line["code"] == code
    assert isinstance(line["duration_ms"], int | float)
    assert line["duration_ms"] >= 0
    assert line["level"] == "info"
    assert line["service"] == "test-service"
    assert re.fullmatch(r"[0-9a-f]{16}|req-[\w-]+", line["request_id"])


async def read_stream(
    channel: grpc.aio.Channel,
    method: str,
    request: bytes,
    request_id: str | None = None,
    deadline: float = 10,
) -> tuple[list[bytes], grpc.aio.AioRpcError | None]:
    metadata = [("x-request-id", request_id)] if request_id else []
    call = channel.unary_stream(f"/{SERVICE}/{method}")(
        request, metadata=metadata, timeout=deadline
    )
    items: list[bytes] = []
    try:
        async for item in call:
            items.append(item)
    except grpc.aio.AioRpcError as error:
        return items, error
    return items, None
