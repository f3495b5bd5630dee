"""Turning domain errors into gRPC statuses with google.rpc details."""

from __future__ import annotations

import grpc
from google.protobuf import duration_pb2
from google.rpc import code_pb2, error_details_pb2, status_pb2
from grpc_status import rpc_status

from services.common.errors import InvalidArgument, ResourceExhausted, SayItError


def to_status(error: SayItError) -> grpc.Status:
    """A grpc.Status (code, message, trailing metadata with details) for a domain error."""
    status = status_pb2.Status(code=error.code.value[0], message=error.message)
    if isinstance(error, InvalidArgument) and error.violations:
        bad_request = error_details_pb2.BadRequest(
            field_violations=[
                error_details_pb2.BadRequest.FieldViolation(
                    field=v.field, description=v.description
                )
                for v in error.violations
            ]
        )
        status.details.add().Pack(bad_request)
    if isinstance(error, ResourceExhausted):
        if error.retry_after_seconds is not None:
            delay = duration_pb2.Duration()
            delay.FromNanoseconds(int(max(0.0, error.retry_after_seconds) * 1e9))
            status.details.add().Pack(error_details_pb2.RetryInfo(retry_delay=delay))
        if error.violations:
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
    return rpc_status.to_status(status)


def internal_status(request_id: str) -> grpc.Status:
    status = status_pb2.Status(
        code=code_pb2.INTERNAL, message=f"internal error (request id {request_id})"
    )
    return rpc_status.to_status(status)
