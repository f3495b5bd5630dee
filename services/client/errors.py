"""Errors the SayIt client raises: the gRPC status code, the server's message and its retry
hint."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import grpc
from google.rpc import error_details_pb2, status_pb2

STATUS_DETAILS_KEY = "grpc-status-details-bin"


class ClientError(Exception):
    """A call failed. `code` is the gRPC status code, `message` the server's explanation,
    `retry_after` the seconds the server asks to wait before trying again (its
    google.rpc.RetryInfo), or None when it gave no hint."""

    def __init__(
        self, code: grpc.StatusCode, message: str, retry_after: float | None = None
    ) -> None:
        super().__init__(f"{code.name}: {message}")
        self.code = code
        self.message = message
        self.retry_after = retry_after


class JobError(ClientError):
    """A job ended without a transcript: it failed (with the job's error code) or was
    cancelled (CANCELLED)."""

    def __init__(self, job_name: str, code: grpc.StatusCode, message: str) -> None:
        super().__init__(code, f"{job_name}: {message}")
        self.job_name = job_name


@contextmanager
def translated() -> Iterator[None]:
    """Turn grpc.RpcError into ClientError, keeping code, details and retry hint."""
    try:
        yield
    except grpc.RpcError as error:
        raise from_rpc_error(error) from error


def from_rpc_error(error: grpc.RpcError) -> ClientError:
    code = error.code() if hasattr(error, "code") else grpc.StatusCode.UNKNOWN
    details = error.details() if hasattr(error, "details") else str(error)
    return ClientError(code, details or code.name, retry_after(error))


def retry_after(error: grpc.RpcError) -> float | None:
    """The delay of the google.rpc.RetryInfo the server sent with `error`, if any."""
    trailing = error.trailing_metadata() if hasattr(error, "trailing_metadata") else None
    for key, value in trailing or ():
        if key != STATUS_DETAILS_KEY or not isinstance(value, bytes):
            continue
        try:
            details = status_pb2.Status.FromString(value).details
        except Exception:  # a malformed trailer: no hint
            return None
        for item in details:
            info = error_details_pb2.RetryInfo()
            if item.Unpack(info):
                return info.retry_delay.ToNanoseconds() / 1e9
    return None


def status_code(number: int) -> grpc.StatusCode:
    """The StatusCode for its number (as stored in a JobError); UNKNOWN if out of range."""
    for code in grpc.StatusCode:
        if code.value[0] == number:
            return code
    return grpc.StatusCode.UNKNOWN
