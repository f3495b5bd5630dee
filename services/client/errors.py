"""Errors the SayIt client raises: the gRPC status code and the server's message."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import grpc


class ClientError(Exception):
    """A call failed. `code` is the gRPC status code, `message` the server's explanation."""

    def __init__(self, code: grpc.StatusCode, message: str) -> None:
        super().__init__(f"{code.name}: {message}")
        self.code = code
        self.message = message


class JobError(ClientError):
    """A job ended without a transcript: it failed (with the job's error code) or was
    cancelled (CANCELLED)."""

    def __init__(self, job_name: str, code: grpc.StatusCode, message: str) -> None:
        super().__init__(code, f"{job_name}: {message}")
        self.job_name = job_name


@contextmanager
def translated() -> Iterator[None]:
    """Turn grpc.RpcError into ClientError, keeping code and details."""
    try:
        yield
    except grpc.RpcError as error:
        raise from_rpc_error(error) from error


def from_rpc_error(error: grpc.RpcError) -> ClientError:
    code = error.code() if hasattr(error, "code") else grpc.StatusCode.UNKNOWN
    details = error.details() if hasattr(error, "details") else str(error)
    return ClientError(code, details or code.name)


def status_code(number: int) -> grpc.StatusCode:
    """The StatusCode for its number (as stored in a JobError); UNKNOWN if out of range."""
    for code in grpc.StatusCode:
        if code.value[0] == number:
            return code
    return grpc.StatusCode.UNKNOWN
