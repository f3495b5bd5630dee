"""Domain errors that carry their gRPC status.

Code below the servicers raises these; one interceptor (services.common.interceptors) turns them
into statuses. Anything else that escapes a handler becomes INTERNAL with a generic message.
"""

from __future__ import annotations

from dataclasses import dataclass

import grpc


@dataclass(frozen=True)
class FieldViolation:
    """One bad field, for google.rpc.BadRequest details."""

    field: str
    description: str


class SayItError(Exception):
    """An error a caller can act on. `message` is sent to the caller as the status details."""

    code: grpc.StatusCode = grpc.StatusCode.INTERNAL

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


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
    code = grpc.StatusCode.RESOURCE_EXHAUSTED

    def __init__(self, message: str, retry_after_seconds: float | None = None) -> None:
        super().__init__(message)
        self.retry_after_seconds = retry_after_seconds


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
    """The domain error for a failed outbound call, keeping the downstream code and message."""
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
        return err
    if cls is InvalidArgument:
        return InvalidArgument(details)
    return cls(details)


def status_code_number(code: grpc.StatusCode) -> int:
    """The google.rpc.Code number of a grpc.StatusCode (e.g. INVALID_ARGUMENT -> 3)."""
    value: tuple[int, str] = code.value
    return value[0]


def status_code_from_number(number: int) -> grpc.StatusCode:
    for code in grpc.StatusCode:
        if code.value[0] == number:
            return code
    return grpc.StatusCode.UNKNOWN
