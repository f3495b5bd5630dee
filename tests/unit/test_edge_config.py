"""TLS settings (services.common.tls), the gateway's limits settings, quota and pass-through
details in statuses (services.common.status / errors), and the gateway's request checks."""

from __future__ import annotations

from pathlib import Path

import grpc
import grpc.aio
import pytest
from google.rpc import error_details_pb2, status_pb2

from sayit.common.v1 import audio_pb2
from sayit.common.v1 import transcription_pb2 as tpb
from services.common.config import Env
from services.common.errors import (
    STATUS_DETAILS_KEY,
    ConfigError,
    InvalidArgument,
    QuotaViolation,
    ResourceExhausted,
    from_rpc_error,
)
from services.common.status import to_status
from services.common.tls import load_client_tls, load_server_tls
from services.gateway import convert
from services.gateway.config import load_config

PEM = b"-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"


@pytest.fixture
def pems(tmp_path: Path) -> dict[str, str]:
    paths = {}
    for name in ("cert", "key", "ca"):
        path = tmp_path / f"{name}.pem"
        path.write_bytes(PEM)
        paths[name] = str(path)
    (tmp_path / "plain.txt").write_text("not pem")
    paths["plain"] = str(tmp_path / "plain.txt")
    return paths


def test_tls_is_off_unless_configured() -> None:
    assert load_server_tls(Env({})) is None
    assert load_client_tls(Env({})) is None


def test_server_tls_and_mutual_tls(pems: dict[str, str]) -> None:
    tls = load_server_tls(
        Env({"SAYIT_TLS_CERT_FILE": pems["cert"], "SAYIT_TLS_KEY_FILE": pems["key"]})
    )
    assert tls is not None and not tls.mutual and tls.certificate_chain == PEM
    mutual = load_server_tls(
        Env(
            {
                "SAYIT_TLS_CERT_FILE": pems["cert"],
                "SAYIT_TLS_KEY_FILE": pems["key"],
                "SAYIT_TLS_CLIENT_CA_FILE": pems["ca"],
            }
        )
    )
    assert mutual is not None and mutual.mutual
    assert "PEM" not in repr(mutual) and "BEGIN" not in repr(mutual)  # keys never logged


def test_client_tls(pems: dict[str, str]) -> None:
    tls = load_client_tls(Env({"SAYIT_TLS_CA_FILE": pems["ca"]}))
    assert tls is not None and tls.certificate_chain is None
    both = load_client_tls(
        Env(
            {
                "SAYIT_TLS_CA_FILE": pems["ca"],
                "SAYIT_TLS_CLIENT_CERT_FILE": pems["cert"],
                "SAYIT_TLS_CLIENT_KEY_FILE": pems["key"],
            }
        )
    )
    assert both is not None and both.private_key == PEM


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"SAYIT_TLS_CERT_FILE": "cert"}, "must be set together"),
        ({"SAYIT_TLS_CLIENT_CA_FILE": "ca"}, "needs SAYIT_TLS_CERT_FILE"),
        (
            {"SAYIT_TLS_CERT_FILE": "/nope.pem", "SAYIT_TLS_KEY_FILE": "key"},
            "cannot read /nope.pem",
        ),
        ({"SAYIT_TLS_CERT_FILE": "plain", "SAYIT_TLS_KEY_FILE": "key"}, "is not a PEM file"),
        (
            {"SAYIT_TLS_CLIENT_CERT_FILE": "cert", "SAYIT_TLS_CLIENT_KEY_FILE": "key"},
            "needs SAYIT_TLS_CA_FILE",
        ),
        ({"SAYIT_TLS_CA_FILE": "ca", "SAYIT_TLS_CLIENT_KEY_FILE": "key"}, "must be set together"),
    ],
)
def test_bad_tls_settings(pems: dict[str, str], env: dict[str, str], message: str) -> None:
    environ = {k: pems.get(v, v) for k, v in env.items()}
    with pytest.raises(ConfigError, match=message):
        load_server_tls(Env(environ))
        load_client_tls(Env(environ))


def test_gateway_limits_settings() -> None:
    config = load_config({})
    assert config.api_keys_file is None
    assert (config.limits.requests_per_second, config.limits.request_burst) == (50.0, 100)
    assert config.limits.audio_seconds_per_day == 0
    assert config.server.max_message_bytes == 100 * 1024 * 1024
    assert config.max_audio_seconds == 4 * 3600
    with pytest.raises(ConfigError, match="SAYIT_TENANT_REQUEST_BURST must be >= 1"):
        load_config({"SAYIT_TENANT_REQUEST_BURST": "0"})


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


def test_gateway_request_checks() -> None:
    config = tpb.TranscriptionConfig()
    with pytest.raises(
        ResourceExhausted, match=r"1\.0 MiB \(1048577 bytes\); the limit is 1\.0 MiB"
    ):
        convert.validate_submission(
            audio_pb2.Audio(content=b"x" * (1 << 20 | 1)), config, "base", 1 << 20
        )
    with pytest.raises(InvalidArgument, match=r"audio\.filename is 256 characters"):
        convert.validate_submission(
            audio_pb2.Audio(content=b"x", filename="f" * 256), config, "base", 10
        )
    with pytest.raises(InvalidArgument, match="page_size must be between 0 and 100"):
        convert.validate_page(-1, "")
    with pytest.raises(InvalidArgument, match="page_token is not a token"):
        convert.validate_page(10, "x" * 513)
    with pytest.raises(InvalidArgument, match="after_sequence must be 0"):
        convert.validate_after_sequence(-5)
    convert.validate_page(100, "x" * 512)
