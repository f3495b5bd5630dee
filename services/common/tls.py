"""TLS and mutual TLS for servers and for the channels between services (all optional).

A server serves TLS when it has a certificate and key; with a client CA it also requires every
client to present a certificate signed by that CA (mutual TLS). A channel uses TLS when it has a
CA to verify the server with, and presents its own certificate when it has one (for servers that
require mutual TLS). The files (SAYIT_TLS_CERT_FILE...) are read and checked with the other
settings (services/common/settings.py), once, in each service's __main__.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import grpc


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
