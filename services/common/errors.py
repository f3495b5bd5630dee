"""Domain errors that carry their gRPC status.

Code below the servicers raises these; one interceptor (services.common.interceptors) turns them
into statuses. Anything else that escapes a handler becomes INTERNAL with a generic message.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import grpc
from google.protobuf import any_pb2
from google.rpc import status_pb2

# Where grpc carries a google.rpc.Status (with its details) in the trailing metadata.
STATUS_DETAILS_KEY = "grpc-status-details-bin"


@dataclass(frozen=True)
class FieldViolation:
    """One bad field, for google.rpc.BadRequest details."""

    field: str
    description: str


@dataclass(frozen=True)
class QuotaViolation:
    """One exceeded limit, for google.rpc.QuotaFailure details."""

    subject: str  # whose limit, e.g. "tenant:billing" or "queue:sayit-default"
    description: str


class SayItError(Exception):
    """An error a caller can act on. `message` is sent to the caller as the status details."""

    code: grpc.StatusCode = grpc.StatusCode.INTERNAL

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message
        # google.rpc details received from a downstream service, passed on unchanged.
        self.details: tuple[any_pb2.Any, ...] = ()


class InvalidArgument(SayItError):
    code = grpc.StatusCode.INVALID_ARGUMENT

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.violations: tuple[FieldViolation, ...] = (
            (FieldViolation(field, message),) if field else ()
        )


class BadAudio(InvalidArgument):
    """The audio cannot be decoded, is empty, or is truncated."""

    def __init__(self, message: str) -> None:
        super().__init__(message, field="audio.content")


class NotFound(SayItError):
    code = grpc.StatusCode.NOT_FOUND


class FailedPrecondition(SayItError):
    code = grpc.StatusCode.FAILED_PRECONDITION


class ResourceExhausted(SayItError):
    """Over a limit. `retry_after_seconds` becomes google.rpc.RetryInfo (when retrying later can
    succeed), `violations` google.rpc.QuotaFailure."""

    code = grpc.StatusCode.RESOURCE_EXHAUSTED

    def __init__(
        self,
        message: str,
        retry_after_seconds: float | None = None,
        violations: Sequence[QuotaViolation] = (),
    ) -> None:
        super().__init__(message)
        self.retry_after_seconds = retry_after_seconds
        self.violations = tuple(violations)


class Unavailable(SayItError):
    code = grpc.StatusCode.UNAVAILABLE


class Unauthenticated(SayItError):
    code = grpc.StatusCode.UNAUTHENTICATED


class PermissionDenied(SayItError):
    code = grpc.StatusCode.PERMISSION_DENIED


class DeadlineExceeded(SayItError):
    code = grpc.StatusCode.DEADLINE_EXCEEDED


class Cancelled(SayItError):
    code = grpc.StatusCode.CANCELLED


class Internal(SayItError):
    code = grpc.StatusCode.INTERNAL


class ModelNotFound(SayItError):
    """A model name or path that resolves to nothing; the message lists every place looked at."""

    code = grpc.StatusCode.INVALID_ARGUMENT


class ConfigError(Exception):
    """A bad environment variable; stops start-up with a message naming it."""


# Downstream statuses we pass through unchanged; anything else (UNKNOWN, DATA_LOSS, ...) becomes
# INTERNAL so that callers never see UNKNOWN.
PASS_THROUGH_CODES = frozenset(
    {
        grpc.StatusCode.INVALID_ARGUMENT,
        grpc.StatusCode.NOT_FOUND,
        grpc.StatusCode.ALREADY_EXISTS,
        grpc.StatusCode.FAILED_PRECONDITION,
        grpc.StatusCode.RESOURCE_EXHAUSTED,
        grpc.StatusCode.UNAVAILABLE,
        grpc.StatusCode.UNAUTHENTICATED,
        grpc.StatusCode.PERMISSION_DENIED,
        grpc.StatusCode.DEADLINE_EXCEEDED,
        grpc.StatusCode.CANCELLED,
        grpc.StatusCode.OUT_OF_RANGE,
        grpc.StatusCode.ABORTED,
        grpc.StatusCode.UNIMPLEMENTED,
    }
)

_BY_CODE: dict[grpc.StatusCode, type[SayItError]] = {
    grpc.StatusCode.INVALID_ARGUMENT: InvalidArgument,
    grpc.StatusCode.NOT_FOUND: NotFound,
    grpc.StatusCode.FAILED_PRECONDITION: FailedPrecondition,
    grpc.StatusCode.RESOURCE_EXHAUSTED: ResourceExhausted,
    grpc.StatusCode.UNAVAILABLE: Unavailable,
    grpc.StatusCode.UNAUTHENTICATED: Unauthenticated,
    grpc.StatusCode.PERMISSION_DENIED: PermissionDenied,
    grpc.StatusCode.DEADLINE_EXCEEDED: DeadlineExceeded,
    grpc.StatusCode.CANCELLED: Cancelled,
}


def from_rpc_error(error: grpc.RpcError, peer: str) -> SayItError:
    """The domain error for a failed outbound call, keeping the downstream code, message and
    google.rpc details (field violations, retry hints, quota failures)."""
    code = error.code() if hasattr(error, "code") else grpc.StatusCode.UNKNOWN
    details = (error.details() if hasattr(error, "details") else None) or ""
    if code == grpc.StatusCode.UNAVAILABLE:
        return Unavailable(
            f"{peer} is unavailable: {details}" if details else f"{peer} is unavailable"
        )
    if code not in PASS_THROUGH_CODES:
        return Internal(f"{peer} failed ({code.name})")
    cls = _BY_CODE.get(code)
    if cls is None:
        err = SayItError(details)
        err.code = code
    elif cls is InvalidArgument:
        err = InvalidArgument(details)
    else:
        err = cls(details)
    err.details = _status_details(error)
    return err


def _status_details(error: grpc.RpcError) -> tuple[any_pb2.Any, ...]:
    trailing = error.trailing_metadata() if hasattr(error, "trailing_metadata") else None
    for key, value in trailing or ():
        if key == STATUS_DETAILS_KEY and isinstance(value, bytes):
            try:
                return tuple(status_pb2.Status.FromString(value).details)
            except Exception:  # a malformed trailer from downstream: keep code and message
                return ()
    return ()


def status_code_number(code: grpc.StatusCode) -> int:
    """The google.rpc.Code number of a grpc.StatusCode (e.g. INVALID_ARGUMENT -> 3)."""
    value: tuple[int, str] = code.value
    return value[0]


def status_code_from_number(number: int) -> grpc.StatusCode:
    for code in grpc.StatusCode:
        if code.value[0] == number:
            return code
    return grpc.StatusCode.UNKNOWN
