"""Calls that wait as the server asks: google.rpc.RetryInfo in a status's details.

The gateway answers a tenant over its rate (and, with the stream caps, over its streams) with
RESOURCE_EXHAUSTED carrying RetryInfo. A checker that treats that answer as a verdict counts
its own throttling as lost jobs, so the load tools retry such calls after the delay given,
until their own deadline.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

import grpc
from google.rpc import error_details_pb2, status_pb2

T = TypeVar("T")
# Where gRPC carries the google.rpc.Status with its details (what grpc_status reads); read here
# directly so one function serves sync and asyncio calls alike.
STATUS_DETAILS_KEY = "grpc-status-details-bin"

# Codes whose RetryInfo means "the same call later may succeed".
RETRYABLE = (grpc.StatusCode.RESOURCE_EXHAUSTED, grpc.StatusCode.UNAVAILABLE)


def retry_delay(error: grpc.RpcError) -> float | None:
    """The RetryInfo delay of a failed call in seconds; None when the status carries none."""
    status = status_pb2.Status()
    trailing = getattr(error, "trailing_metadata", None)  # absent on errors raised locally
    for key, value in (trailing() if trailing else None) or ():
        if key == STATUS_DETAILS_KEY:
            status.ParseFromString(value)
    for detail in status.details:
        if detail.Is(error_details_pb2.RetryInfo.DESCRIPTOR):
            info = error_details_pb2.RetryInfo()
            detail.Unpack(info)
            return float(info.retry_delay.ToNanoseconds()) / 1e9
    return None


def honouring_retry_info(
    call: Callable[[], T],
    *,
    patience_seconds: float,
    on_retry: Callable[[grpc.RpcError, float], None] | None = None,
) -> T:
    """`call()`, again after each RetryInfo delay (at least 50 ms) while `patience_seconds`
    last; raises the last error when there is no RetryInfo or no patience left."""
    deadline = time.monotonic() + patience_seconds
    while True:
        try:
            return call()
        except grpc.RpcError as error:
            delay = retry_delay(error) if error.code() in RETRYABLE else None
            if delay is None or time.monotonic() + delay > deadline:
                raise
            if on_retry is not None:
                on_retry(error, delay)
            time.sleep(max(0.05, delay))
