"""TLS settings (services.common.settings) and what they make (services.common.tls)."""

from __future__ import annotations

from pathlib import Path

import pytest

from services.common.errors import ConfigError
from services.common.shared_settings import ClientTLSSettings, ServerTLSSettings
from services.common.tls import ClientTLS, ServerTLS

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


def load_server_tls(environ: dict[str, str]) -> ServerTLS | None:
    return ServerTLSSettings.from_env(environ).server_tls


def load_client_tls(environ: dict[str, str]) -> ClientTLS | None:
    return ClientTLSSettings.from_env(environ).client_tls


def test_tls_is_off_unless_configured() -> None:
    assert load_server_tls({}) is None
    assert load_client_tls({}) is None


def test_server_tls_and_mutual_tls(pems: dict[str, str]) -> None:
    tls = load_server_tls({"SAYIT_TLS_CERT_FILE": pems["cert"], "SAYIT_TLS_KEY_FILE": pems["key"]})
    assert tls is not None and not tls.mutual and tls.certificate_chain == PEM
    mutual = load_server_tls(
        {
            "SAYIT_TLS_CERT_FILE": pems["cert"],
            "SAYIT_TLS_KEY_FILE": pems["key"],
            "SAYIT_TLS_CLIENT_CA_FILE": pems["ca"],
        }
    )
    assert mutual is not None and mutual.mutual
    assert "PEM" not in repr(mutual) and "BEGIN" not in repr(mutual)  # keys never logged
    settings = ServerTLSSettings.from_env(
        {"SAYIT_TLS_CERT_FILE": pems["cert"], "SAYIT_TLS_KEY_FILE": pems["key"]}
    )
    assert "BEGIN" not in repr(settings) and "BEGIN" not in str(settings.model_dump())


def test_client_tls(pems: dict[str, str]) -> None:
    tls = load_client_tls({"SAYIT_TLS_CA_FILE": pems["ca"]})
    assert tls is not None and tls.certificate_chain is None
    both = load_client_tls(
        {
            "SAYIT_TLS_CA_FILE": pems["ca"],
            "SAYIT_TLS_CLIENT_CERT_FILE": pems["cert"],
            "SAYIT_TLS_CLIENT_KEY_FILE": pems["key"],
        }
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
        load_server_tls(environ)
        load_client_tls(environ)
