"""Domain errors that carry their gRPC status, and the mapping of a failed downstream call.

Code below the servicers raises these; one interceptor (services.common.interceptors) turns them
into statuses. Anything else that escapes a handler becomes INTERNAL with a generic message.
A downstream status that no SayIt service wrote (gRPC's own "failed to connect to all
addresses; ... ipv4:10.0.0.7:50052") is logged and replaced by a message a caller can act on.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import grpc
from google.protobuf import any_pb2
from google.rpc import error_details_pb2, status_pb2

from services.common import logs

log = logs.get_logger("sayit.errors")

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


# Whom a public caller is told failed when something behind the answering service did.
DOWNSTREAM = "the transcription service"
# How long a caller is told to wait after UNAVAILABLE (google.rpc.RetryInfo): long enough for a
# restarted peer to come back, short enough that a blip costs little.
UNAVAILABLE_RETRY_SECONDS = 2.0


class SayItError(Exception):
    """An error a caller can act on. `message` is sent to the caller as the status details;
    `retry_after_seconds` (when set) becomes google.rpc.RetryInfo."""

    code: grpc.StatusCode = grpc.StatusCode.INTERNAL
    retry_after_seconds: float | None = None

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
    """Retryable: the work was not done. Carries a RetryInfo delay unless told otherwise."""

    code = grpc.StatusCode.UNAVAILABLE

    def __init__(
        self, message: str, retry_after_seconds: float | None = UNAVAILABLE_RETRY_SECONDS
    ) -> None:
        super().__init__(message)
        self.retry_after_seconds = retry_after_seconds


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


def from_rpc_error(error: grpc.RpcError, peer: str = DOWNSTREAM) -> SayItError:
    """The domain error for a failed outbound call. A status written by a SayIt service (it
    carries a google.rpc.Status trailer) keeps its code, message and details (field violations,
    retry hints, quota failures): that service already made its message fit for a caller. Any
    other status was made by gRPC itself and its text names addresses: it is logged (with the
    request id bound to this call) and replaced by a message about `peer`."""
    code = error.code() if hasattr(error, "code") else grpc.StatusCode.UNKNOWN
    details = (error.details() if hasattr(error, "details") else None) or ""
    written = _status_trailer(error)
    if written is None or code not in PASS_THROUGH_CODES:
        log.warning("downstream_failed", code=code.name, details=details)
        return _generic(code, peer)
    cls = _BY_CODE.get(code)
    if cls is None:
        err = SayItError(details)
        err.code = code
    elif cls is Unavailable:
        err = Unavailable(details, retry_after_seconds=None)  # its RetryInfo is passed on
    else:
        err = cls(details)
    err.details = tuple(written.details)
    return err


def _generic(code: grpc.StatusCode, peer: str) -> SayItError:
    """What a caller is told when gRPC, not a SayIt service, ended a downstream call."""
    if code == grpc.StatusCode.UNAVAILABLE:
        return Unavailable(f"{peer} is unavailable; retry in a few seconds")
    if code == grpc.StatusCode.DEADLINE_EXCEEDED:
        return DeadlineExceeded(f"{peer} did not answer within the call's deadline")
    if code == grpc.StatusCode.CANCELLED:
        return Cancelled(f"the call to {peer} was cancelled before it finished")
    if code == grpc.StatusCode.RESOURCE_EXHAUSTED:
        return ResourceExhausted(
            f"a message to or from {peer} is larger than the services accept; send less audio "
            "or ask for a smaller page"
        )
    return Internal(f"{peer} failed ({code.name})")


def public_details(error: grpc.RpcError, peer: str = DOWNSTREAM) -> str:
    """A downstream failure's message as a caller may read it (e.g. stored in a job's error)."""
    return from_rpc_error(error, peer).message


def retry_delay_seconds(details: Sequence[any_pb2.Any]) -> float | None:
    """The google.rpc.RetryInfo delay among status details, if any."""
    for item in details:
        info = error_details_pb2.RetryInfo()
        if item.Unpack(info):
            return info.retry_delay.ToNanoseconds() / 1e9
    return None


def _status_trailer(error: grpc.RpcError) -> status_pb2.Status | None:
    trailing = error.trailing_metadata() if hasattr(error, "trailing_metadata") else None
    for key, value in trailing or ():
        if key == STATUS_DETAILS_KEY and isinstance(value, bytes):
            try:
                return status_pb2.Status.FromString(value)
            except Exception:  # a malformed trailer: treat the status as gRPC's own
                return None
    return None


def status_code_number(code: grpc.StatusCode) -> int:
    """The google.rpc.Code number of a grpc.StatusCode (e.g. INVALID_ARGUMENT -> 3)."""
    value: tuple[int, str] = code.value
    return value[0]


def status_code_from_number(number: int) -> grpc.StatusCode:
    for code in grpc.StatusCode:
        if code.value[0] == number:
            return code
    return grpc.StatusCode.UNKNOWN
