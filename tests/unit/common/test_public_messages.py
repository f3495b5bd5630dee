"""What a caller reads in a status: no addresses (services.common.redact), the request id on
UNAVAILABLE / INTERNAL, RetryInfo on UNAVAILABLE, and gRPC's retry pushback trailer."""

from __future__ import annotations

import grpc
import pytest
from google.rpc import error_details_pb2, status_pb2

from services.common.errors import (
    Internal,
    InvalidArgument,
    NotFound,
    ResourceExhausted,
    SayItError,
    Unavailable,
)
from services.common.redact import HIDDEN, has_address, redact
from services.common.status import PUSHBACK_KEY, to_status

DETAILS_KEY = "grpc-status-details-bin"


def trailer(status: grpc.Status, key: str) -> list[str | bytes]:
    return [value for k, value in status.trailing_metadata if k == key]


def retry_info(status: grpc.Status) -> list[error_details_pb2.RetryInfo]:
    rich = status_pb2.Status.FromString(trailer(status, DETAILS_KEY)[0])
    found = []
    for item in rich.details:
        info = error_details_pb2.RetryInfo()
        if item.Unpack(info):
            found.append(info)
    return found


@pytest.mark.parametrize(
    "leak",
    [
        "failed to connect to all addresses; last error: UNKNOWN: ipv4:127.0.0.1:50052: refused",
        "Error 111 connecting to 10.1.2.3:6379. Connection refused.",
        "Error connecting to redis://sayit:secret@redis.sayit.svc:6379/0",
        "connect to [::1]:50051 refused",
        "fe80::1 unreachable",
        "sayit-scheduler:50052 refused",
        "localhost:6379 refused",
        "unix:/run/sayit/transcriber.sock refused",
        "dns:///transcriber-direct.sayit.svc.cluster.local:50053 refused",
    ],
)
def test_addresses_are_redacted(leak: str) -> None:
    assert has_address(leak)
    cleaned = redact(leak)
    assert HIDDEN in cleaned
    assert not has_address(cleaned)
    for secret in ("127.0.0.1", "10.1.2.3", "redis://", "::1", "fe80", "6379", "50052", "unix:"):
        assert secret not in cleaned


@pytest.mark.parametrize(
    "message",
    [
        "audio is 45 s long; the limit is 30 s (0.00833 h): split it into shorter files",
        "chunk 2 of 3 (0:00:30–0:01:00) could not be transcribed",
        "page_size must be between 0 and 100; got 101",
        "jobs/0123456789abcdef0123456789abcdef was not found",
        "config.language_code 'xx' is not a language; use e.g. ko, en",
    ],
)
def test_ordinary_messages_are_untouched(message: str) -> None:
    assert redact(message) == message


def test_status_message_is_redacted_and_names_the_request_id() -> None:
    status = to_status(Unavailable("Error 111 connecting to 10.1.2.3:6379."), "req-42")
    assert status.code == grpc.StatusCode.UNAVAILABLE
    assert status.details == f"Error 111 connecting to {HIDDEN}. (request id req-42)"
    rich = status_pb2.Status.FromString(trailer(status, DETAILS_KEY)[0])
    assert rich.message == status.details


@pytest.mark.parametrize(
    ("error", "named"),
    [
        (Unavailable("down"), True),
        (Internal("broken"), True),
        (NotFound("jobs/1 not found"), False),
        (InvalidArgument("bad"), False),
    ],
)
def test_request_id_only_where_it_helps(error: SayItError, named: bool) -> None:
    assert ("(request id r1)" in to_status(error, "r1").details) is named


def test_request_id_is_not_repeated() -> None:
    # A downstream service (same request id) already named it.
    status = to_status(Unavailable("the job store is down (request id r1)"), "r1")
    assert status.details.count("request id") == 1


def test_unavailable_carries_retry_info_and_pushback() -> None:
    status = to_status(Unavailable("the job store is unavailable"), "r1")
    [info] = retry_info(status)
    assert info.retry_delay.seconds == 2
    assert trailer(status, PUSHBACK_KEY) == ["2000"]


def test_unavailable_without_hint_leaves_backoff_to_the_client() -> None:
    status = to_status(Unavailable("down", retry_after_seconds=None))
    assert retry_info(status) == []
    assert trailer(status, PUSHBACK_KEY) == []


@pytest.mark.parametrize(
    ("seconds", "pushback"), [(0.25, ["250"]), (None, ["-1"]), (3600.0, ["-1"])]
)
def test_resource_exhausted_pushback(seconds: float | None, pushback: list[str]) -> None:
    status = to_status(ResourceExhausted("over the limit", retry_after_seconds=seconds))
    assert trailer(status, PUSHBACK_KEY) == pushback


def test_no_pushback_for_other_codes() -> None:
    assert trailer(to_status(NotFound("x")), PUSHBACK_KEY) == []
