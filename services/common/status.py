"""Turning domain errors into gRPC statuses with google.rpc details.

Every message is passed through services.common.redact, and UNAVAILABLE / INTERNAL messages name
the request id, so a caller can quote it and an operator can find the logged cause.
Retry hints go out twice: as google.rpc.RetryInfo (for any client) and as gRPC's own
`grpc-retry-pushback-ms` trailer, which gRPC's built-in retries obey.
"""

from __future__ import annotations

from typing import NamedTuple

import grpc
from google.protobuf import duration_pb2
from google.rpc import code_pb2, error_details_pb2, status_pb2
from grpc_status import rpc_status

from services.common.errors import (
    InvalidArgument,
    ResourceExhausted,
    SayItError,
    retry_delay_seconds,
)
from services.common.redact import redact

PUSHBACK_KEY = "grpc-retry-pushback-ms"
# A hint longer than this (a full queue, a daily quota) tells gRPC's retries to stop rather than
# sleep through the caller's deadline; the caller still reads the hint in RetryInfo.
MAX_PUSHBACK_SECONDS = 5.0
# Codes whose message says which request to look up.
_WITH_REQUEST_ID = frozenset({grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.INTERNAL})
# Codes whose retry hint becomes a pushback trailer.
_RETRYABLE = frozenset({grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.RESOURCE_EXHAUSTED})


class _Status(NamedTuple):
    code: grpc.StatusCode
    details: str
    trailing_metadata: tuple[tuple[str, str | bytes], ...]


def public_message(error: SayItError, request_id: str = "") -> str:
    """The message a caller reads: no addresses, and the request id where one helps."""
    message = redact(error.message)
    if request_id and error.code in _WITH_REQUEST_ID and "(request id " not in message:
        message = f"{message} (request id {request_id})"
    return message


def to_status(error: SayItError, request_id: str = "") -> grpc.Status:
    """A grpc.Status (code, message, trailing metadata with details) for a domain error."""
    status = status_pb2.Status(code=error.code.value[0], message=public_message(error, request_id))
    if isinstance(error, InvalidArgument) and error.violations:
        bad_request = error_details_pb2.BadRequest(
            field_violations=[
                error_details_pb2.BadRequest.FieldViolation(
                    field=v.field, description=redact(v.description)
                )
                for v in error.violations
            ]
        )
        status.details.add().Pack(bad_request)
    if error.retry_after_seconds is not None:
        delay = duration_pb2.Duration()
        delay.FromNanoseconds(int(max(0.0, error.retry_after_seconds) * 1e9))
        status.details.add().Pack(error_details_pb2.RetryInfo(retry_delay=delay))
    if isinstance(error, ResourceExhausted) and error.violations:
        quota = error_details_pb2.QuotaFailure(
            violations=[
                error_details_pb2.QuotaFailure.Violation(
                    subject=v.subject, description=v.description
                )
                for v in error.violations
            ]
        )
        status.details.add().Pack(quota)
    status.details.extend(error.details)
    base = rpc_status.to_status(status)
    trailing = tuple(base.trailing_metadata)
    pushback = _pushback(error.code, retry_delay_seconds(status.details))
    if pushback is not None:
        trailing = (*trailing, (PUSHBACK_KEY, pushback))
    return _Status(base.code, base.details, trailing)


def _pushback(code: grpc.StatusCode, delay: float | None) -> str | None:
    """gRPC's retry pushback: the hinted delay in ms, "-1" (do not retry) for a limit without a
    short hint, nothing (gRPC's own backoff) for an UNAVAILABLE without one."""
    if code not in _RETRYABLE:
        return None
    if delay is None:
        return "-1" if code == grpc.StatusCode.RESOURCE_EXHAUSTED else None
    if delay > MAX_PUSHBACK_SECONDS:
        return "-1"
    return str(int(delay * 1000))


def internal_status(request_id: str) -> grpc.Status:
    status = status_pb2.Status(
        code=code_pb2.INTERNAL, message=f"internal error (request id {request_id})"
    )
    return rpc_status.to_status(status)
