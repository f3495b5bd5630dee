"""The mesh's own PKI: a local CA and one certificate per service, made once and reused.

`ensure(DIR)` writes `ca.crt`, `ca.key` and `<service>.crt` / `<service>.key` for every service
in SERVICES, or keeps the files already there when they are whole, signed by that CA and not
within RENEW_BEFORE of expiry (anything else is made again). A certificate's identity is its URI
SAN `spiffe://sayit/<service>` (also its CN); servers check it per call (services.common.peers).
Each certificate serves and calls (server and client auth), for 127.0.0.1, localhost and the
service's Kubernetes names. `operator` is for tools (make status, tests, bench): any server lets
it check health and use reflection, none lets it call an RPC.

    python -m services.common.pki DIR [--namespace NS] [--dns NAME ...]
"""

from __future__ import annotations

import argparse
import datetime
import ipaddress
import os
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from services.common.tls import ClientTLS

SERVICES = ("gateway", "scheduler", "transcriber", "worker", "operator")
IDENTITY_PREFIX = "spiffe://sayit/"
# Each service's Kubernetes Service names (deploy/kubernetes), so in-cluster names verify.
K8S_NAMES = {
    "gateway": ("gateway",),
    "scheduler": ("scheduler",),
    "transcriber": ("transcriber-direct",),
}
CA_DAYS = 3650
CERT_DAYS = 365
# A certificate this close to expiry is made again by the next `ensure` (e.g. the next make up).
RENEW_BEFORE = datetime.timedelta(days=30)
_CLOCK_SKEW = datetime.timedelta(minutes=5)


def identity(service: str) -> str:
    return f"{IDENTITY_PREFIX}{service}"


@dataclass(frozen=True)
class Pki:
    """The files of one PKI directory."""

    directory: Path

    @property
    def ca_cert(self) -> Path:
        return self.directory / "ca.crt"

    @property
    def ca_key(self) -> Path:
        return self.directory / "ca.key"

    def cert(self, service: str) -> Path:
        return self.directory / f"{service}.crt"

    def key(self, service: str) -> Path:
        return self.directory / f"{service}.key"

    def client_tls(self, service: str | None) -> ClientTLS:
        """How `service` calls the others (None: TLS without a client certificate)."""
        return ClientTLS(
            self.ca_cert.read_bytes(),
            None if service is None else self.cert(service).read_bytes(),
            None if service is None else self.key(service).read_bytes(),
        )

    def client_env(self, service: str) -> dict[str, str]:
        """SAYIT_TLS_* for calling the others as `service`."""
        return {
            "SAYIT_TLS_CA_FILE": str(self.ca_cert),
            "SAYIT_TLS_CLIENT_CERT_FILE": str(self.cert(service)),
            "SAYIT_TLS_CLIENT_KEY_FILE": str(self.key(service)),
        }

    def server_env(self, service: str) -> dict[str, str]:
        """SAYIT_TLS_* for serving mutual TLS as `service` (and calling the others as it)."""
        return {
            **self.client_env(service),
            "SAYIT_TLS_CERT_FILE": str(self.cert(service)),
            "SAYIT_TLS_KEY_FILE": str(self.key(service)),
            "SAYIT_TLS_CLIENT_CA_FILE": str(self.ca_cert),
        }


def ensure(
    directory: Path,
    *,
    namespace: str = "sayit",
    dns_names: Iterable[str] = (),
    now: datetime.datetime | None = None,
) -> Pki:
    """The PKI in `directory`: what is there when still good, else made afresh."""
    now = now or datetime.datetime.now(datetime.UTC)
    pki = Pki(directory)
    directory.mkdir(parents=True, exist_ok=True)
    ca = _load_good_ca(pki, now)
    if ca is None:
        ca = _make_ca(pki, now)
    ca_cert, ca_key = ca
    for service in SERVICES:
        if not _good_leaf(pki, service, ca_cert, now):
            names = _dns_names(service, namespace, dns_names)
            _make_leaf(pki, service, names, ca_cert, ca_key, now)
    return pki


def _dns_names(service: str, namespace: str, extra: Iterable[str]) -> list[str]:
    names = ["localhost", *extra]
    for name in K8S_NAMES.get(service, ()):
        names += [name, f"{name}.{namespace}", f"{name}.{namespace}.svc"]
        names.append(f"{name}.{namespace}.svc.cluster.local")
    return list(dict.fromkeys(names))


def _fresh(cert: x509.Certificate, now: datetime.datetime) -> bool:
    return cert.not_valid_before_utc <= now and now + RENEW_BEFORE < cert.not_valid_after_utc


def _load(path: Path) -> x509.Certificate | None:
    try:
        return x509.load_pem_x509_certificate(path.read_bytes())
    except (OSError, ValueError):
        return None


def _load_good_ca(
    pki: Pki, now: datetime.datetime
) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey] | None:
    cert = _load(pki.ca_cert)
    try:
        key = serialization.load_pem_private_key(pki.ca_key.read_bytes(), None)
    except (OSError, ValueError, TypeError):
        return None
    if cert is None or not isinstance(key, ec.EllipticCurvePrivateKey) or not _fresh(cert, now):
        return None
    if cert.public_key() != key.public_key():
        return None
    return cert, key


def _good_leaf(pki: Pki, service: str, ca: x509.Certificate, now: datetime.datetime) -> bool:
    cert = _load(pki.cert(service))
    if cert is None or not _fresh(cert, now) or cert.issuer != ca.subject:
        return False
    try:
        cert.verify_directly_issued_by(ca)
        key = serialization.load_pem_private_key(pki.key(service).read_bytes(), None)
    except (OSError, ValueError, TypeError, InvalidSignature):
        return False
    return key.public_key() == cert.public_key()


def _name(common_name: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "SayIt"),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


def _make_ca(
    pki: Pki, now: datetime.datetime
) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    key = ec.generate_private_key(ec.SECP256R1())
    # A new CA: every leaf signed by the old one must go too (ensure remakes them).
    for service in SERVICES:
        pki.cert(service).unlink(missing_ok=True)
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name("sayit-mesh-ca"))
        .issuer_name(_name("sayit-mesh-ca"))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - _CLOCK_SKEW)
        .not_valid_after(now + datetime.timedelta(days=CA_DAYS))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=False,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .sign(key, hashes.SHA256())
    )
    _write(pki.ca_cert, pki.ca_key, cert, key)
    return cert, key


def _make_leaf(
    pki: Pki,
    service: str,
    dns_names: list[str],
    ca: x509.Certificate,
    ca_key: ec.EllipticCurvePrivateKey,
    now: datetime.datetime,
) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    sans: list[x509.GeneralName] = [x509.UniformResourceIdentifier(identity(service))]
    sans += [x509.DNSName(name) for name in dns_names]
    sans.append(x509.IPAddress(ipaddress.ip_address("127.0.0.1")))
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(service))
        .issuer_name(ca.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - _CLOCK_SKEW)
        .not_valid_after(min(now + datetime.timedelta(days=CERT_DAYS), ca.not_valid_after_utc))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.ExtendedKeyUsage(
                [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]
            ),
            critical=False,
        )
        .add_extension(x509.SubjectAlternativeName(sans), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    _write(pki.cert(service), pki.key(service), cert, key)


def _write(
    cert_path: Path, key_path: Path, cert: x509.Certificate, key: ec.EllipticCurvePrivateKey
) -> None:
    # The key first and private from its creation; the certificate replaced in one step, so a
    # service starting meanwhile never reads half a file.
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    for path, content, mode in (
        (key_path, key_pem, 0o600),
        (cert_path, cert.public_bytes(serialization.Encoding.PEM), 0o644),
    ):
        temporary = path.with_suffix(path.suffix + ".tmp")
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
        with os.fdopen(fd, "wb") as file:
            file.write(content)
        os.replace(temporary, path)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("directory", type=Path)
    parser.add_argument("--namespace", default="sayit", help="the Kubernetes namespace")
    parser.add_argument(
        "--dns", action="append", default=[], help="another DNS name for every certificate"
    )
    args = parser.parse_args(argv)
    pki = ensure(args.directory, namespace=args.namespace, dns_names=args.dns)
    print(f"PKI ready in {pki.directory}: ca.crt and {', '.join(SERVICES)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
