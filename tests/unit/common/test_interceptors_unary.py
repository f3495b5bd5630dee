"""services.common.interceptors.ServiceInterceptor on unary calls: status codes, rich details,
crashes and downstream failures. In process: a grpc.aio server with tiny bytes-in/bytes-out
handlers (no protos, tests.support.interceptor_service), a real client channel, and the
structured log lines captured from stderr."""

from __future__ import annotations

import re

import grpc
import grpc.aio
import pytest
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from tests.support.interceptor_calls import assert_finished, call_unary, failing, rich_status
from tests.support.interceptor_service import SERVICE
from tests.support.log_capture import LogCapture


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
    await call_unary(channel, "ok", request_id="req-job", metadata=[("x-sayit-job-id", "0123abcd")])
    await call_unary(channel, "ok", request_id="req-nojob")
    first, second = await logged.finished(2)
    assert (first["request_id"], first["job_id"]) == ("req-job", "0123abcd")
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
    # The server logs after the caller has its answer: wait for the line here, or it would
    # land in the next test's capture.
    [line] = await logged.finished()
    assert_finished(line, "Unary", "INVALID_ARGUMENT")


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
            r"the transcription service is unavailable; retry in a few seconds "
            r"\(request id [0-9a-f]{16}\)",
        ),
        ("down-notfound", grpc.StatusCode.NOT_FOUND, r"jobs/7 not found"),
        (
            "down-notfound-raw",
            grpc.StatusCode.INTERNAL,
            r"the transcription service failed \(NOT_FOUND\) \(request id [0-9a-f]{16}\)",
        ),
        (
            "down-unknown",
            grpc.StatusCode.INTERNAL,
            r"the transcription service failed \(UNKNOWN\) \(request id [0-9a-f]{16}\)",
        ),
        (
            "down-data-loss",
            grpc.StatusCode.INTERNAL,
            r"the transcription service failed \(DATA_LOSS\) \(request id [0-9a-f]{16}\)",
        ),
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
    assert error.code() == code
    assert re.fullmatch(details, error.details() or ""), error.details()
    assert "ipv4" not in (error.details() or "") and "127.0.0.1" not in str(error.details())
    [line] = await logged.finished()
    assert_finished(line, "Unary", code.name)
    assert logged.events("rpc_crashed") == []  # a known outcome, not a crash


async def test_downstream_unavailable_logs_the_raw_text_and_sends_retry_info(
    channel: grpc.aio.Channel, logged: LogCapture
) -> None:
    error = await failing(channel, "down-unavailable", request_id="req-down-1")
    assert error.details() == (
        "the transcription service is unavailable; retry in a few seconds (request id req-down-1)"
    )
    [retry] = [
        info
        for item in rich_status(error).details
        if item.Unpack(info := error_details_pb2.RetryInfo())
    ]
    assert retry.retry_delay.seconds == 2
    assert ("grpc-retry-pushback-ms", "2000") in list(error.trailing_metadata() or ())
    # The operator finds gRPC's own words (with the address) under the same request id.
    [raw] = logged.events("downstream_failed")
    assert raw["request_id"] == "req-down-1"
    assert "ipv4:127.0.0.1:1" in raw["details"]


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
