"""TLS and mutual TLS for servers and for the channels between services (all optional).

A server serves TLS when it has a certificate and key; with a client CA it also requires every
client to present a certificate signed by that CA (mutual TLS). A channel uses TLS when it has a
CA to verify the server with, and presents its own certificate when it has one (for servers that
require mutual TLS). Files are read once, at start, by `load_*` in each service's __main__.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import grpc

from services.common.config import Env
from services.common.errors import ConfigError


@dataclass(frozen=True)
class ServerTLS:
    certificate_chain: bytes = field(repr=False)
    private_key: bytes = field(repr=False)
    # Clients must present a certificate signed by this CA (mutual TLS); None = any client.
    client_ca: bytes | None = field(default=None, repr=False)

    @property
    def mutual(self) -> bool:
        return self.client_ca is not None

    def credentials(self) -> grpc.ServerCredentials:
        return grpc.ssl_server_credentials(
            [(self.private_key, self.certificate_chain)],
            root_certificates=self.client_ca,
            require_client_auth=self.client_ca is not None,
        )


@dataclass(frozen=True)
class ClientTLS:
    # Verifies the server's certificate.
    ca: bytes = field(repr=False)
    # Presented to servers that require mutual TLS.
    certificate_chain: bytes | None = field(default=None, repr=False)
    private_key: bytes | None = field(default=None, repr=False)

    def credentials(self) -> grpc.ChannelCredentials:
        return grpc.ssl_channel_credentials(
            root_certificates=self.ca,
            private_key=self.private_key,
            certificate_chain=self.certificate_chain,
        )


def _read(env: Env, name: str) -> bytes | None:
    path = env.get_path(name, None)
    if path is None:
        return None
    try:
        content = Path(path).read_bytes()
    except OSError as error:
        raise ConfigError(f"{name}: cannot read {path}: {error.strerror or error}") from None
    if b"-----BEGIN" not in content:
        raise ConfigError(f"{name}: {path} is not a PEM file")
    return content


def load_server_tls(env: Env) -> ServerTLS | None:
    """From SAYIT_TLS_CERT_FILE + SAYIT_TLS_KEY_FILE (both or neither) and, for mutual TLS,
    SAYIT_TLS_CLIENT_CA_FILE."""
    cert = _read(env, "SAYIT_TLS_CERT_FILE")
    key = _read(env, "SAYIT_TLS_KEY_FILE")
    client_ca = _read(env, "SAYIT_TLS_CLIENT_CA_FILE")
    if (cert is None) != (key is None):
        raise ConfigError("SAYIT_TLS_CERT_FILE and SAYIT_TLS_KEY_FILE must be set together")
    if cert is None or key is None:
        if client_ca is not None:
            raise ConfigError(
                "SAYIT_TLS_CLIENT_CA_FILE (mutual TLS) needs SAYIT_TLS_CERT_FILE and "
                "SAYIT_TLS_KEY_FILE"
            )
        return None
    return ServerTLS(cert, key, client_ca)


def load_client_tls(env: Env) -> ClientTLS | None:
    """From SAYIT_TLS_CA_FILE and, to present a certificate, SAYIT_TLS_CLIENT_CERT_FILE +
    SAYIT_TLS_CLIENT_KEY_FILE."""
    ca = _read(env, "SAYIT_TLS_CA_FILE")
    cert = _read(env, "SAYIT_TLS_CLIENT_CERT_FILE")
    key = _read(env, "SAYIT_TLS_CLIENT_KEY_FILE")
    if (cert is None) != (key is None):
        raise ConfigError(
            "SAYIT_TLS_CLIENT_CERT_FILE and SAYIT_TLS_CLIENT_KEY_FILE must be set together"
        )
    if ca is None:
        if cert is not None:
            raise ConfigError(
                "SAYIT_TLS_CLIENT_CERT_FILE needs SAYIT_TLS_CA_FILE (the CA that signed the "
                "servers' certificates)"
            )
        return None
    return ClientTLS(ca, cert, key)
