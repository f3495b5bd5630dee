"""services.common.interceptors.ServiceInterceptor end to end, in process: a grpc.aio server on
an ephemeral port with tiny bytes-in/bytes-out handlers (no protos), a real client channel, and
the structured log lines captured from stderr."""

from __future__ import annotations

import asyncio
import json
import logging
import re
import sys
from collections.abc import AsyncIterator, Iterator
from typing import Any

import grpc
import grpc.aio
import pytest
import pytest_asyncio
import structlog
from google.rpc import error_details_pb2, status_pb2
from grpc_status import rpc_status

from services.common import interceptors, logs
from services.common.config import LogConfig
from services.common.errors import InvalidArgument, NotFound, ResourceExhausted
from services.common.interceptors import ServiceInterceptor

SERVICE = "sayit.test.v1.TestService"
DETAILS_KEY = "grpc-status-details-bin"


def downstream(code: grpc.StatusCode, details: str) -> grpc.aio.AioRpcError:
    return grpc.aio.AioRpcError(
        code, grpc.aio.Metadata(), grpc.aio.Metadata(), details=details, debug_error_string=""
    )


# --- handlers ------------------------------------------------------------------------------------


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
        raise downstream(grpc.StatusCode.UNAVAILABLE, "connection refused")
    if action == "down-notfound":
        raise downstream(grpc.StatusCode.NOT_FOUND, "jobs/7 not found")
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


# --- fixtures ------------------------------------------------------------------------------------


@pytest_asyncio.fixture(scope="module")
async def channel() -> AsyncIterator[grpc.aio.Channel]:
    server = grpc.aio.server(interceptors=[ServiceInterceptor()])
    server.add_generic_rpc_handlers(generic_handlers())
    port = server.add_insecure_port("127.0.0.1:0")
    assert port > 0
    await server.start()
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as client:
            yield client
    finally:
        await server.stop(None)


class _CurrentStderr:
    def write(self, text: str) -> int:
        return sys.stderr.write(text)

    def flush(self) -> None:
        sys.stderr.flush()


class LogCapture:
    """The JSON lines logged to stderr during one test."""

    def __init__(self, capsys: pytest.CaptureFixture[str]) -> None:
        self._capsys = capsys
        self.lines: list[dict[str, Any]] = []

    def configure(self, level: str) -> None:
        logs.configure("test-service", LogConfig(level=level, format="json"))
        # pytest swaps sys.stderr between the setup and call phases; write to whichever is
        # current so that capsys sees the lines.
        [handler] = logging.getLogger().handlers
        assert isinstance(handler, logging.StreamHandler)
        handler.setStream(_CurrentStderr())

    def _read(self) -> None:
        for line in self._capsys.readouterr().err.splitlines():
            if line.startswith("{"):
                self.lines.append(json.loads(line))

    def events(self, event: str) -> list[dict[str, Any]]:
        self._read()
        return [line for line in self.lines if line.get("event") == event]

    async def finished(self, count: int = 1) -> list[dict[str, Any]]:
        """The rpc_finished lines, once at least `count` are there (briefly waits)."""
        for _ in range(100):
            lines = self.events("rpc_finished")
            if len(lines) >= count:
                await asyncio.sleep(0.02)  # and no more than that
                return self.events("rpc_finished")
            await asyncio.sleep(0.01)
        return self.events("rpc_finished")


@pytest.fixture
def logged(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> Iterator[LogCapture]:
    root = logging.getLogger()
    saved = (root.handlers[:], root.level)
    # A fresh proxy, so that a logger cached under another configuration is not reused.
    monkeypatch.setattr(interceptors, "log", logs.get_logger("sayit.rpc"))
    capture = LogCapture(capsys)
    capture.configure("info")
    capture.events("")  # drop anything logged before the test
    capture.lines.clear()
    try:
        yield capture
    finally:
        root.handlers[:], level = saved
        root.setLevel(level)
        structlog.reset_defaults()
        structlog.contextvars.clear_contextvars()


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


# --- unary ---------------------------------------------------------------------------------------


async def test_ok(channel: grpc.aio.Channel, logged: LogCapture) -> None:
    assert await call_unary(channel, "ok", request_id="req-ok-1") == b"pong"
    [line] = await logged.finished()
    assert_finished(line, "Unary", "OK")
    assert line["request_id"] == "req-ok-1"
    assert "job_id" not in line


async def test_duration_is_measured(channel: grpc.aio.Channel, logged: LogCapture) -> None:
    assert await call_unary(channel, "slow") == b"slept"
    [line] = await logged.finished()
    assert_finished(line, "Unary", "OK")
    assert 50 <= line["duration_ms"] < 5000


async def test_job_id_is_logged(channel: grpc.aio.Channel, logged: LogCapture) -> None:
    await call_unary(
        channel, "ok", request_id="req-job", metadata=[("x-sayit-job-id", "jobs/1234")]
    )
    await call_unary(channel, "ok", request_id="req-nojob")
    first, second = await logged.finished(2)
    assert (first["request_id"], first["job_id"]) == ("req-job", "jobs/1234")
    assert second["request_id"] == "req-nojob"
    assert "job_id" not in second  # nothing leaks from one call to the next


async def test_invalid_argument_with_field(channel: grpc.aio.Channel, logged: LogCapture) -> None:
    error = await failing(channel, "invalid")
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert error.details() == "unknown language code 'xx'"
    rich = rich_status(error)
    assert (rich.code, rich.message) == (3, "unknown language code 'xx'")
    bad_request = error_details_pb2.BadRequest()
    assert rich.details[0].Unpack(bad_request)
    assert [(v.field, v.description) for v in bad_request.field_violations] == [
        ("config.language_code", "unknown language code 'xx'")
    ]
    [line] = await logged.finished()
    assert_finished(line, "Unary", "INVALID_ARGUMENT")


async def test_non_ascii_message(channel: grpc.aio.Channel, logged: LogCapture) -> None:
    error = await failing(channel, "korean")
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert error.details() == "언어 코드가 잘못되었습니다"
    assert rich_status(error).message == "언어 코드가 잘못되었습니다"


async def test_not_found(channel: grpc.aio.Channel, logged: LogCapture) -> None:
    error = await failing(channel, "notfound")
    assert (error.code(), error.details()) == (grpc.StatusCode.NOT_FOUND, "jobs/42 not found")
    assert len(rich_status(error).details) == 0
    [line] = await logged.finished()
    assert_finished(line, "Unary", "NOT_FOUND")


async def test_resource_exhausted_with_retry_info(
    channel: grpc.aio.Channel, logged: LogCapture
) -> None:
    call = channel.unary_unary(f"/{SERVICE}/Unary")(b"exhausted", timeout=10)
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await call
    assert raised.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert raised.value.details() == "all 2 transcription slots are busy"
    # The same details through grpc_status's own helper.
    status = await rpc_status.aio.from_call(call)
    assert status is not None
    assert (status.code, status.message) == (8, "all 2 transcription slots are busy")
    retry = error_details_pb2.RetryInfo()
    assert status.details[0].Unpack(retry)
    assert (retry.retry_delay.seconds, retry.retry_delay.nanos) == (2, 0)
    [line] = await logged.finished()
    assert_finished(line, "Unary", "RESOURCE_EXHAUSTED")


async def test_unexpected_exception_is_internal_with_request_id(
    channel: grpc.aio.Channel, logged: LogCapture
) -> None:
    error = await failing(channel, "crash", request_id="req-crash-7")
    assert error.code() == grpc.StatusCode.INTERNAL
    assert error.details() == "internal error (request id req-crash-7)"
    assert "secret" not in (error.details() or "")
    assert "hunter2" not in str(error.trailing_metadata())
    [line] = await logged.finished()
    assert_finished(line, "Unary", "INTERNAL")
    assert line["request_id"] == "req-crash-7"
    # The traceback goes to the log, not to the caller.
    [crash] = logged.events("rpc_crashed")
    assert crash["level"] == "error"
    assert crash["method"] == f"/{SERVICE}/Unary"
    assert crash["request_id"] == "req-crash-7"
    assert "ValueError: secret internals: password=hunter2" in crash["exception"]


async def test_internal_without_request_id_uses_a_generated_one(
    channel: grpc.aio.Channel, logged: LogCapture
) -> None:
    error = await failing(channel, "crash")
    match = re.fullmatch(r"internal error \(request id ([0-9a-f]{16})\)", error.details() or "")
    assert match, error.details()
    [line] = await logged.finished()
    assert line["request_id"] == match.group(1)


@pytest.mark.parametrize(
    ("action", "code", "details"),
    [
        (
            "down-unavailable",
            grpc.StatusCode.UNAVAILABLE,
            "a downstream service is unavailable: connection refused",
        ),
        ("down-notfound", grpc.StatusCode.NOT_FOUND, "jobs/7 not found"),
        ("down-unknown", grpc.StatusCode.INTERNAL, "a downstream service failed (UNKNOWN)"),
        ("down-data-loss", grpc.StatusCode.INTERNAL, "a downstream service failed (DATA_LOSS)"),
    ],
)
async def test_downstream_failure(
    channel: grpc.aio.Channel,
    logged: LogCapture,
    action: str,
    code: grpc.StatusCode,
    details: str,
) -> None:
    error = await failing(channel, action)
    assert (error.code(), error.details()) == (code, details)
    [line] = await logged.finished()
    assert_finished(line, "Unary", code.name)
    assert logged.events("rpc_crashed") == []  # a known outcome, not a crash


async def test_handler_abort_is_kept(channel: grpc.aio.Channel, logged: LogCapture) -> None:
    error = await failing(channel, "abort")
    assert (error.code(), error.details()) == (grpc.StatusCode.PERMISSION_DENIED, "not your job")
    [line] = await logged.finished()
    assert_finished(line, "Unary", "PERMISSION_DENIED")


async def test_handler_set_code_is_logged(channel: grpc.aio.Channel, logged: LogCapture) -> None:
    error = await failing(channel, "set-code")
    assert (error.code(), error.details()) == (
        grpc.StatusCode.FAILED_PRECONDITION,
        "job is not finished",
    )
    [line] = await logged.finished()
    assert_finished(line, "Unary", "FAILED_PRECONDITION")


async def test_sync_handler(channel: grpc.aio.Channel, logged: LogCapture) -> None:
    assert await call_unary(channel, "hello", method="SyncUnary") == b"HELLO"
    error = await failing(channel, "fail", method="SyncUnary")
    assert (error.code(), error.details()) == (
        grpc.StatusCode.NOT_FOUND,
        "sync handler: nothing here",
    )
    ok, failed = await logged.finished(2)
    assert_finished(ok, "SyncUnary", "OK")
    assert_finished(failed, "SyncUnary", "NOT_FOUND")


# --- streaming -----------------------------------------------------------------------------------


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


# --- probes --------------------------------------------------------------------------------------


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
