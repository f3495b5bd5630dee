"""services.common.errors (domain errors, downstream mapping, code numbers) and
services.common.status (domain error -> grpc.Status with google.rpc details)."""

from __future__ import annotations

import grpc
import grpc.aio
import pytest
from google.protobuf import any_pb2
from google.rpc import code_pb2, error_details_pb2, status_pb2

from services.common import errors
from services.common.errors import (
    PASS_THROUGH_CODES,
    BadAudio,
    Internal,
    InvalidArgument,
    ModelNotFound,
    NotFound,
    ResourceExhausted,
    SayItError,
    Unavailable,
    from_rpc_error,
    status_code_from_number,
    status_code_number,
)
from services.common.status import internal_status, to_status

DETAILS_KEY = "grpc-status-details-bin"
PEER = "transcriber 10.0.0.7:50053"


def rpc_error(
    code: grpc.StatusCode, details: str | None = "downstream said no", *, written: bool = True
) -> grpc.RpcError:
    """A failed call; `written`: the status came from a SayIt service (it carries a
    google.rpc.Status trailer), else from gRPC itself (connect failures, deadlines)."""
    trailing = grpc.aio.Metadata()
    if written:
        rich = status_pb2.Status(code=status_code_number(code), message=details or "")
        trailing = grpc.aio.Metadata((DETAILS_KEY, rich.SerializeToString()))
    return grpc.aio.AioRpcError(
        code, grpc.aio.Metadata(), trailing, details=details, debug_error_string=""
    )


def unpack(status: grpc.Status) -> status_pb2.Status:
    """The google.rpc.Status carried in the trailing metadata."""
    values = [value for key, value in status.trailing_metadata if key == DETAILS_KEY]
    assert len(values) == 1, status.trailing_metadata
    return status_pb2.Status.FromString(values[0])


def detail(any_message: any_pb2.Any, cls: type) -> object:
    message = cls()
    assert any_message.Unpack(message), f"{any_message.type_url} is not {cls.__name__}"
    return message


# --- domain errors -------------------------------------------------------------------------------


def test_domain_error_codes() -> None:
    assert SayItError("x").code == grpc.StatusCode.INTERNAL
    assert InvalidArgument("x").code == grpc.StatusCode.INVALID_ARGUMENT
    assert BadAudio("x").code == grpc.StatusCode.INVALID_ARGUMENT
    assert ModelNotFound("x").code == grpc.StatusCode.INVALID_ARGUMENT
    assert NotFound("x").code == grpc.StatusCode.NOT_FOUND
    assert errors.FailedPrecondition("x").code == grpc.StatusCode.FAILED_PRECONDITION
    assert ResourceExhausted("x").code == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert Unavailable("x").code == grpc.StatusCode.UNAVAILABLE
    assert errors.Unauthenticated("x").code == grpc.StatusCode.UNAUTHENTICATED
    assert errors.PermissionDenied("x").code == grpc.StatusCode.PERMISSION_DENIED
    assert errors.DeadlineExceeded("x").code == grpc.StatusCode.DEADLINE_EXCEEDED
    assert errors.Cancelled("x").code == grpc.StatusCode.CANCELLED
    assert Internal("x").code == grpc.StatusCode.INTERNAL


def test_domain_error_message_and_violations() -> None:
    error = InvalidArgument("language is bad", field="config.language_code")
    assert error.message == str(error) == "language is bad"
    assert error.violations == (errors.FieldViolation("config.language_code", "language is bad"),)
    assert InvalidArgument("no field").violations == ()
    assert BadAudio("truncated").violations == (
        errors.FieldViolation("audio.content", "truncated"),
    )
    assert ResourceExhausted("busy").retry_after_seconds is None
    assert ResourceExhausted("busy", retry_after_seconds=1.5).retry_after_seconds == 1.5


# --- from_rpc_error ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "code", sorted(PASS_THROUGH_CODES - {grpc.StatusCode.UNAVAILABLE}, key=status_code_number)
)
def test_pass_through_codes_keep_code_and_details(code: grpc.StatusCode) -> None:
    error = from_rpc_error(rpc_error(code, "the exact downstream words"), PEER)
    assert isinstance(error, SayItError)
    assert error.code == code
    assert error.message == "the exact downstream words"


def test_pass_through_codes() -> None:
    assert {c.name for c in PASS_THROUGH_CODES} == {
        "INVALID_ARGUMENT",
        "NOT_FOUND",
        "ALREADY_EXISTS",
        "FAILED_PRECONDITION",
        "RESOURCE_EXHAUSTED",
        "UNAVAILABLE",
        "UNAUTHENTICATED",
        "PERMISSION_DENIED",
        "DEADLINE_EXCEEDED",
        "CANCELLED",
        "OUT_OF_RANGE",
        "ABORTED",
        "UNIMPLEMENTED",
    }


@pytest.mark.parametrize(
    ("code", "cls"),
    [
        (grpc.StatusCode.INVALID_ARGUMENT, InvalidArgument),
        (grpc.StatusCode.NOT_FOUND, NotFound),
        (grpc.StatusCode.FAILED_PRECONDITION, errors.FailedPrecondition),
        (grpc.StatusCode.RESOURCE_EXHAUSTED, ResourceExhausted),
        (grpc.StatusCode.UNAUTHENTICATED, errors.Unauthenticated),
        (grpc.StatusCode.PERMISSION_DENIED, errors.PermissionDenied),
        (grpc.StatusCode.DEADLINE_EXCEEDED, errors.DeadlineExceeded),
        (grpc.StatusCode.CANCELLED, errors.Cancelled),
    ],
)
def test_pass_through_codes_use_the_domain_class(code: grpc.StatusCode, cls: type) -> None:
    assert type(from_rpc_error(rpc_error(code), PEER)) is cls


def test_invalid_argument_from_downstream_has_no_field() -> None:
    error = from_rpc_error(rpc_error(grpc.StatusCode.INVALID_ARGUMENT, "bad"), PEER)
    assert isinstance(error, InvalidArgument)
    assert error.violations == ()


@pytest.mark.parametrize(
    "code",
    [
        grpc.StatusCode.ALREADY_EXISTS,
        grpc.StatusCode.OUT_OF_RANGE,
        grpc.StatusCode.ABORTED,
        grpc.StatusCode.UNIMPLEMENTED,
    ],
)
def test_pass_through_without_a_class_sets_the_code_on_the_instance(
    code: grpc.StatusCode,
) -> None:
    error = from_rpc_error(rpc_error(code, "nope"), PEER)
    assert type(error) is SayItError
    assert (error.code, error.message) == (code, "nope")
    assert SayItError.code == grpc.StatusCode.INTERNAL  # the class default is untouched
    assert SayItError("other").code == grpc.StatusCode.INTERNAL


GRPC_OWN_TEXT = (
    "failed to connect to all addresses; last error: UNKNOWN: ipv4:10.0.0.7:50052: "
    "Failed to connect to remote host: Connection refused"
)


def test_unavailable_written_by_sayit_keeps_its_message_and_hint() -> None:
    error = from_rpc_error(rpc_error(grpc.StatusCode.UNAVAILABLE, "the job store is down"), PEER)
    assert type(error) is Unavailable
    assert error.message == "the job store is down"
    assert error.retry_after_seconds is None  # the downstream's own RetryInfo is passed on


def test_unavailable_from_grpc_itself_hides_the_address() -> None:
    error = from_rpc_error(
        rpc_error(grpc.StatusCode.UNAVAILABLE, GRPC_OWN_TEXT, written=False), "the scheduler"
    )
    assert type(error) is Unavailable
    assert error.message == "the scheduler is unavailable; retry in a few seconds"
    assert error.retry_after_seconds == errors.UNAVAILABLE_RETRY_SECONDS


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        (grpc.StatusCode.DEADLINE_EXCEEDED, "the scheduler did not answer within"),
        (grpc.StatusCode.CANCELLED, "the call to the scheduler was cancelled"),
        (grpc.StatusCode.RESOURCE_EXHAUSTED, "a message to or from the scheduler is larger"),
        (grpc.StatusCode.UNIMPLEMENTED, "the scheduler failed (UNIMPLEMENTED)"),
        (grpc.StatusCode.INVALID_ARGUMENT, "the scheduler failed (INVALID_ARGUMENT)"),
    ],
)
def test_grpc_own_statuses_get_a_message_without_the_raw_text(
    code: grpc.StatusCode, expected: str
) -> None:
    error = from_rpc_error(rpc_error(code, GRPC_OWN_TEXT, written=False), "the scheduler")
    assert error.message.startswith(expected)
    assert "10.0.0.7" not in error.message and "ipv4" not in error.message


def test_a_malformed_trailer_counts_as_grpc_own_text() -> None:
    bad = grpc.aio.AioRpcError(
        grpc.StatusCode.NOT_FOUND,
        grpc.aio.Metadata(),
        grpc.aio.Metadata((DETAILS_KEY, b"\xff\xff")),
        details=GRPC_OWN_TEXT,
        debug_error_string="",
    )
    assert from_rpc_error(bad, "the scheduler").message == "the scheduler failed (NOT_FOUND)"


def test_public_details_is_the_mapped_message() -> None:
    raw = rpc_error(grpc.StatusCode.UNAVAILABLE, GRPC_OWN_TEXT, written=False)
    assert errors.public_details(raw, "the transcriber") == (
        "the transcriber is unavailable; retry in a few seconds"
    )


@pytest.mark.parametrize(
    "code",
    [
        grpc.StatusCode.UNKNOWN,
        grpc.StatusCode.DATA_LOSS,
        grpc.StatusCode.INTERNAL,
        grpc.StatusCode.OK,
    ],
)
def test_other_codes_become_internal(code: grpc.StatusCode) -> None:
    error = from_rpc_error(rpc_error(code, "secret stack trace"), PEER)
    assert type(error) is Internal
    assert error.code == grpc.StatusCode.INTERNAL
    assert error.message == f"{PEER} failed ({code.name})"
    assert "secret" not in error.message


def test_rpc_error_without_code_is_internal() -> None:
    error = from_rpc_error(grpc.RpcError("plain"), "redis")
    assert type(error) is Internal
    assert error.message == "redis failed (UNKNOWN)"


@pytest.mark.parametrize("code", list(grpc.StatusCode), ids=lambda c: c.name)
def test_never_unknown(code: grpc.StatusCode) -> None:
    assert from_rpc_error(rpc_error(code), PEER).code != grpc.StatusCode.UNKNOWN


# --- status code numbers -------------------------------------------------------------------------


@pytest.mark.parametrize("code", list(grpc.StatusCode), ids=lambda c: c.name)
def test_status_code_numbers_round_trip(code: grpc.StatusCode) -> None:
    number = status_code_number(code)
    assert number == code_pb2.Code.Value(code.name)
    assert status_code_from_number(number) is code


def test_status_code_numbers() -> None:
    assert status_code_number(grpc.StatusCode.OK) == 0
    assert status_code_number(grpc.StatusCode.INVALID_ARGUMENT) == 3
    assert status_code_number(grpc.StatusCode.UNAUTHENTICATED) == 16
    assert sorted(status_code_number(c) for c in grpc.StatusCode) == list(range(17))


@pytest.mark.parametrize("number", [-1, 17, 99])
def test_unknown_number_is_unknown(number: int) -> None:
    assert status_code_from_number(number) is grpc.StatusCode.UNKNOWN


# --- to_status -----------------------------------------------------------------------------------


def test_invalid_argument_with_field_packs_bad_request() -> None:
    status = to_status(InvalidArgument("initial_prompt is too long", field="config.initial_prompt"))
    assert status.code == grpc.StatusCode.INVALID_ARGUMENT
    assert status.details == "initial_prompt is too long"
    rich = unpack(status)
    assert rich.code == code_pb2.INVALID_ARGUMENT == 3
    assert rich.message == "initial_prompt is too long"
    assert len(rich.details) == 1
    bad_request = detail(rich.details[0], error_details_pb2.BadRequest)
    assert isinstance(bad_request, error_details_pb2.BadRequest)
    assert [(v.field, v.description) for v in bad_request.field_violations] == [
        ("config.initial_prompt", "initial_prompt is too long")
    ]


def test_bad_audio_packs_its_field() -> None:
    rich = unpack(to_status(BadAudio("the audio is empty")))
    bad_request = detail(rich.details[0], error_details_pb2.BadRequest)
    assert isinstance(bad_request, error_details_pb2.BadRequest)
    assert bad_request.field_violations[0].field == "audio.content"
    assert bad_request.field_violations[0].description == "the audio is empty"


def test_invalid_argument_without_field_has_no_details() -> None:
    status = to_status(InvalidArgument("bad"))
    rich = unpack(status)
    assert (rich.code, rich.message, len(rich.details)) == (3, "bad", 0)


def test_model_not_found_is_invalid_argument_without_details() -> None:
    status = to_status(ModelNotFound("no model 'tiny' in: /a, /b"))
    assert status.code == grpc.StatusCode.INVALID_ARGUMENT
    assert status.details == "no model 'tiny' in: /a, /b"
    assert len(unpack(status).details) == 0


@pytest.mark.parametrize(
    ("seconds", "expected"),
    [(2, (2, 0)), (1.5, (1, 500_000_000)), (0, (0, 0)), (0.25, (0, 250_000_000))],
)
def test_resource_exhausted_packs_retry_info(seconds: float, expected: tuple[int, int]) -> None:
    status = to_status(ResourceExhausted("all slots are busy", retry_after_seconds=seconds))
    assert status.code == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert status.details == "all slots are busy"
    rich = unpack(status)
    assert rich.code == code_pb2.RESOURCE_EXHAUSTED == 8
    assert len(rich.details) == 1
    retry = detail(rich.details[0], error_details_pb2.RetryInfo)
    assert isinstance(retry, error_details_pb2.RetryInfo)
    assert (retry.retry_delay.seconds, retry.retry_delay.nanos) == expected


def test_resource_exhausted_without_retry_has_no_details() -> None:
    assert len(unpack(to_status(ResourceExhausted("busy"))).details) == 0


@pytest.mark.parametrize(
    "error",
    [
        NotFound("jobs/42 not found"),
        Unavailable("down", retry_after_seconds=None),
        SayItError("generic"),
        Internal("oops"),
    ],
    ids=lambda e: type(e).__name__,
)
def test_other_errors_carry_code_and_message(error: SayItError) -> None:
    status = to_status(error)
    assert status.code == error.code
    assert status.details == error.message
    rich = unpack(status)
    assert rich.code == status_code_number(error.code)
    assert rich.message == error.message
    assert len(rich.details) == 0


def test_passed_through_error_keeps_its_instance_code() -> None:
    error = from_rpc_error(rpc_error(grpc.StatusCode.ALREADY_EXISTS, "exists"), PEER)
    status = to_status(error)
    assert (status.code, status.details) == (grpc.StatusCode.ALREADY_EXISTS, "exists")
    assert unpack(status).code == 6


def test_korean_message_survives() -> None:
    status = to_status(InvalidArgument("언어 코드가 잘못되었습니다", field="config.language_code"))
    assert status.details == "언어 코드가 잘못되었습니다"
    assert unpack(status).message == "언어 코드가 잘못되었습니다"


def test_internal_status() -> None:
    status = internal_status("req-123")
    assert status.code == grpc.StatusCode.INTERNAL
    assert status.details == "internal error (request id req-123)"
    rich = unpack(status)
    assert (rich.code, rich.message, len(rich.details)) == (13, status.details, 0)
