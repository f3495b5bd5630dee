"""Request and job ids from caller metadata (services.common.correlation) on a real in-process
server: valid ones pass unchanged, bad ones never reach a JSON log line, the caller is told the
request id used, and an edge server ignores a caller's job id."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

import grpc
import grpc.aio
import pytest
import pytest_asyncio

from services.common import interceptors
from services.common.correlation import MAX_ID_CHARS, is_valid_id, request_id
from services.common.interceptors import ServiceInterceptor
from services.common.log_throttle import LogThrottle
from tests.support.interceptor_calls import assert_finished, failing
from tests.support.interceptor_service import SERVICE, generic_handlers
from tests.support.log_capture import LogCapture
from tests.support.raw_h2 import unary_call


@pytest.fixture(autouse=True)
def every_warning_logged(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(interceptors, "_bad_id_log", LogThrottle(0.0))


async def call(
    channel: grpc.aio.Channel, metadata: list[tuple[str, str]], action: str = "ok"
) -> tuple[str, str]:
    """(response, the x-request-id of the response's trailing metadata)."""
    rpc = channel.unary_unary(f"/{SERVICE}/Unary")(action.encode(), metadata=metadata, timeout=10)
    reply = await rpc
    trailing = await rpc.trailing_metadata()
    [told] = [v for k, v in trailing or () if k == "x-request-id"]
    return reply.decode(), told


@pytest.mark.parametrize(
    "sent",
    [
        "req-1",
        "3f2a9c0d-1e7b-4a55-9c1d-0a2b3c4d5e6f",
        "01HZX3J5Q8M2C4V6B7N9K0P1R2:span.7_x",
        "a" * MAX_ID_CHARS,
    ],
)
async def test_valid_request_ids_pass_through_unchanged(
    channel: grpc.aio.Channel, logged: LogCapture, sent: str
) -> None:
    reply, told = await call(channel, [("x-request-id", sent)])
    assert (reply, told) == ("pong", sent)
    [line] = await logged.finished()
    assert line["request_id"] == sent
    assert logged.events("metadata_id_refused") == []


@pytest.mark.parametrize(
    ("sent", "reason"),
    [
        ('x", "level": "error", "event": "forged', "characters outside"),
        ("}{", "characters outside"),
        ("back\\slash", "characters outside"),
        ("with space", "characters outside"),
        ("jobs/0123", "characters outside"),
        ("a" * (MAX_ID_CHARS + 1), "longer than 128"),
        ("b" * 4000, "longer than 128"),
    ],
)
async def test_bad_request_ids_are_replaced_and_never_logged(
    channel: grpc.aio.Channel, logged: LogCapture, sent: str, reason: str
) -> None:
    reply, told = await call(channel, [("x-request-id", sent)])
    assert reply == "pong"
    assert told != sent and is_valid_id(told)
    [line] = await logged.finished()
    assert line["request_id"] == told
    assert_finished(line, "Unary", "OK")
    [refused] = logged.events("metadata_id_refused")
    assert refused["key"] == "x-request-id" and reason in refused["reason"]
    raw = "\n".join(json.dumps(entry, ensure_ascii=False) for entry in logged.lines)
    assert sent not in raw and json.dumps(sent)[1:-1] not in raw


async def test_a_failed_call_names_the_replacement_id_in_message_and_trailer(
    channel: grpc.aio.Channel, logged: LogCapture
) -> None:
    error = await failing(channel, "down-unavailable", request_id="not valid!")
    assert error.code() == grpc.StatusCode.UNAVAILABLE
    told = [v for k, v in error.trailing_metadata() or () if k == "x-request-id"]
    assert len(told) == 1 and is_valid_id(told[0]) and told[0] != "not valid!"
    assert error.details().endswith(f"(request id {told[0]})")
    [line] = await logged.finished()
    assert line["request_id"] == told[0]


async def test_no_request_id_gets_a_generated_one_the_caller_is_told(
    channel: grpc.aio.Channel, logged: LogCapture
) -> None:
    _, told = await call(channel, [])
    [line] = await logged.finished()
    assert line["request_id"] == told and len(told) == 16
    assert logged.events("metadata_id_refused") == []


async def test_internal_servers_drop_a_bad_job_id(
    channel: grpc.aio.Channel, logged: LogCapture
) -> None:
    await call(channel, [("x-request-id", "r1"), ("x-sayit-job-id", '0123"} {"job_id": "x')])
    [line] = await logged.finished()
    assert "job_id" not in line
    [refused] = logged.events("metadata_id_refused")
    assert refused["key"] == "x-sayit-job-id"


async def test_the_edge_ignores_a_callers_job_id(
    edge_channel: grpc.aio.Channel, logged: LogCapture
) -> None:
    """A public caller must not file its log lines under another tenant's job."""
    victim = "0123456789abcdef0123456789abcdef"
    await call(edge_channel, [("x-request-id", "r2"), ("x-sayit-job-id", victim)])
    [line] = await logged.finished()
    assert line["request_id"] == "r2"
    assert "job_id" not in line
    assert victim not in json.dumps(logged.lines)


@pytest_asyncio.fixture(scope="module")
async def raw_addr() -> AsyncIterator[str]:
    """A server for raw HTTP/2 calls (the package's `channel` hides its address)."""
    server = grpc.aio.server(interceptors=[ServiceInterceptor()])
    server.add_generic_rpc_handlers(generic_handlers())
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    yield f"127.0.0.1:{port}"
    await server.stop(None)


@pytest.mark.parametrize(
    "sent",
    [
        b'good"}\n{"event": "forged", "request_id": "victim',
        b"\x1b[31mred\x1b[0m",
        b"tab\there\r",
        b"nul\x00byte",
        "é€".encode(),
        b"z" * 3000,
    ],
)
async def test_ids_grpc_clients_cannot_send_still_never_reach_the_log(
    raw_addr: str, logged: LogCapture, sent: bytes
) -> None:
    """gRPC's client library refuses control characters and non-ASCII in metadata, but gRPC's
    server takes them from any HTTP/2 client: they are replaced all the same."""
    ok = await asyncio.to_thread(
        unary_call,
        raw_addr,
        f"/{SERVICE}/Unary",
        b"ok",
        [(b"x-request-id", sent), (b"x-sayit-job-id", sent)],
    )
    assert ok, "the server reset the call"
    [line] = await logged.finished()
    assert_finished(line, "Unary", "OK")
    assert is_valid_id(line["request_id"]) and "job_id" not in line
    text = sent.decode(errors="replace")
    for entry in logged.lines:
        for field in entry.values():
            assert not (isinstance(field, str) and ("victim" in field or text in field)), entry
    assert logged.events("metadata_id_refused")[0]["key"] == "x-request-id"


def test_request_id_keeps_valid_and_fills_missing() -> None:
    assert request_id("abc:1.2_3-4") == ("abc:1.2_3-4", None)
    used, why = request_id(None)
    assert is_valid_id(used) and why is None
    assert request_id("")[1] == "empty"
