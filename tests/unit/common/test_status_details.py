"""Quota and pass-through details in statuses (services.common.status / errors)."""

from __future__ import annotations

import grpc
import grpc.aio
from google.rpc import error_details_pb2, status_pb2

from services.common.errors import (
    STATUS_DETAILS_KEY,
    QuotaViolation,
    ResourceExhausted,
    from_rpc_error,
)
from services.common.status import to_status


def test_resource_exhausted_carries_retry_info_and_quota_failure() -> None:
    error = ResourceExhausted(
        "over", retry_after_seconds=1.5, violations=[QuotaViolation("tenant:a", "rps: 1")]
    )
    status = to_status(error)
    assert status.code == grpc.StatusCode.RESOURCE_EXHAUSTED
    [raw] = [v for k, v in status.trailing_metadata if k == STATUS_DETAILS_KEY]
    details = status_pb2.Status.FromString(raw).details
    retry, quota = error_details_pb2.RetryInfo(), error_details_pb2.QuotaFailure()
    assert details[0].Unpack(retry) and retry.retry_delay.ToNanoseconds() == 1_500_000_000
    assert details[1].Unpack(quota) and quota.violations[0].subject == "tenant:a"


def test_downstream_details_pass_through() -> None:
    inner = to_status(
        ResourceExhausted("queue full", 30, [QuotaViolation("queue:sayit-default", "wait")])
    )
    downstream = grpc.aio.AioRpcError(
        grpc.StatusCode.RESOURCE_EXHAUSTED,
        grpc.aio.Metadata(),
        grpc.aio.Metadata(*inner.trailing_metadata),
        details="queue full",
        debug_error_string="",
    )
    error = from_rpc_error(downstream, "the scheduler")
    assert isinstance(error, ResourceExhausted) and len(error.details) == 2
    [raw] = [v for k, v in to_status(error).trailing_metadata if k == STATUS_DETAILS_KEY]
    again = status_pb2.Status.FromString(raw)
    assert again.message == "queue full" and list(again.details) == list(error.details)
