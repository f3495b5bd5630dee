"""TLS and mutual TLS for servers and for the channels between services (all optional).

A server serves TLS when it has a certificate and key; with a client CA it also requires every
client to present a certificate signed by that CA (mutual TLS). A channel uses TLS when it has a
CA to verify the server with, and presents its own certificate when it has one (for servers that
require mutual TLS). The files (SAYIT_TLS_CERT_FILE...) are read and checked with the other
settings (services/common/settings.py) in each service's __main__; when `files` is given, they
are read again when they change (services/common/tls_files.py): a server's new handshakes use the
new set, and a channel (services/common/reloading_channel.py) moves new calls to a new channel.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import grpc

from services.common.tls_files import TLSFiles, TLSMaterial


@dataclass(frozen=True)
class ServerTLS:
    certificate_chain: bytes = field(repr=False)
    private_key: bytes = field(repr=False)
    # Clients must present a certificate signed by this CA (mutual TLS); None = any client.
    client_ca: bytes | None = field(default=None, repr=False)
    # Where the above came from, to follow rotations; None = fixed for the process's life.
    files: TLSFiles | None = None

    @property
    def mutual(self) -> bool:
        return self.client_ca is not None

    def credentials(self) -> grpc.ServerCredentials:
        if self.files is None:
            return grpc.ssl_server_credentials(
                [(self.private_key, self.certificate_chain)],
                root_certificates=self.client_ca,
                require_client_auth=self.client_ca is not None,
            )
        # gRPC asks the fetcher on every new handshake; None keeps the configuration it has.
        material = TLSMaterial(self.certificate_chain, self.private_key, self.client_ca)
        changed = self.files.watch(material)

        def fetch() -> grpc.ServerCertificateConfiguration | None:
            material = changed()
            return None if material is None else _server_configuration(material)

        return grpc.dynamic_ssl_server_credentials(
            _server_configuration(material),
            fetch,
            require_client_authentication=self.client_ca is not None,
        )


def _server_configuration(material: TLSMaterial) -> grpc.ServerCertificateConfiguration:
    assert material.private_key is not None and material.certificate_chain is not None
    return grpc.ssl_server_certificate_configuration(
        [(material.private_key, material.certificate_chain)], root_certificates=material.ca
    )


@dataclass(frozen=True)
class ClientTLS:
    # Verifies the server's certificate.
    ca: bytes = field(repr=False)
    # Presented to servers that require mutual TLS.
    certificate_chain: bytes | None = field(default=None, repr=False)
    private_key: bytes | None = field(default=None, repr=False)
    # Where the above came from, to follow rotations; None = fixed for the process's life.
    files: TLSFiles | None = None

    @property
    def material(self) -> TLSMaterial:
        return TLSMaterial(self.certificate_chain, self.private_key, self.ca)

    def credentials(self) -> grpc.ChannelCredentials:
        return grpc.ssl_channel_credentials(
            root_certificates=self.ca,
            private_key=self.private_key,
            certificate_chain=self.certificate_chain,
        )

    def renewed(self, material: TLSMaterial) -> ClientTLS:
        assert material.ca is not None
        return ClientTLS(material.ca, material.certificate_chain, material.private_key, self.files)
