"""services.common.pki: the mesh's CA and service certificates, made once and then reused until
they near expiry."""

from __future__ import annotations

import datetime
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from devsupport.processes import ROOT
from services.common import pki


def files(directory: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(directory.iterdir())}


def load(path: Path) -> x509.Certificate:
    return x509.load_pem_x509_certificate(path.read_bytes())


def test_one_certificate_per_service_named_by_its_spiffe_id(tmp_path: Path) -> None:
    made = pki.ensure(tmp_path)
    ca = load(made.ca_cert)
    for service in ("gateway", "scheduler", "transcriber", "worker", "operator"):
        cert = load(made.cert(service))
        cert.verify_directly_issued_by(ca)
        sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        assert sans.get_values_for_type(x509.UniformResourceIdentifier) == [
            f"spiffe://sayit/{service}"
        ]
        assert "localhost" in sans.get_values_for_type(x509.DNSName)
        assert [str(ip) for ip in sans.get_values_for_type(x509.IPAddress)] == ["127.0.0.1"]
        [cn] = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
        assert cn.value == service
        usage = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
        assert set(usage) == {ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH}
        assert made.key(service).stat().st_mode & 0o777 == 0o600
    assert made.ca_key.stat().st_mode & 0o777 == 0o600
    # In-cluster names verify too.
    scheduler = load(made.cert("scheduler")).extensions
    names = scheduler.get_extension_for_class(x509.SubjectAlternativeName).value
    assert "scheduler.sayit.svc.cluster.local" in names.get_values_for_type(x509.DNSName)


def test_a_second_ensure_reuses_everything(tmp_path: Path) -> None:
    pki.ensure(tmp_path)
    first = files(tmp_path)
    pki.ensure(tmp_path)
    assert files(tmp_path) == first


def test_certificates_near_expiry_are_made_again_with_the_same_ca(tmp_path: Path) -> None:
    pki.ensure(tmp_path)
    first = files(tmp_path)
    # A year on, the service certificates (365 days) are within RENEW_BEFORE of their end.
    later = datetime.datetime.now(datetime.UTC) + datetime.timedelta(days=340)
    made = pki.ensure(tmp_path, now=later)
    second = files(tmp_path)
    assert second["ca.crt"] == first["ca.crt"] and second["ca.key"] == first["ca.key"]
    for service in pki.SERVICES:
        assert second[f"{service}.crt"] != first[f"{service}.crt"], service
        assert second[f"{service}.key"] != first[f"{service}.key"], service
        assert load(made.cert(service)).not_valid_after_utc > later + pki.RENEW_BEFORE


def test_an_expired_ca_is_replaced_with_every_certificate(tmp_path: Path) -> None:
    pki.ensure(tmp_path)
    first = files(tmp_path)
    much_later = datetime.datetime.now(datetime.UTC) + datetime.timedelta(days=pki.CA_DAYS + 1)
    made = pki.ensure(tmp_path, now=much_later)
    second = files(tmp_path)
    assert all(second[name] != first[name] for name in first), "something was kept"
    new_ca = load(made.ca_cert)
    for service in pki.SERVICES:
        load(made.cert(service)).verify_directly_issued_by(new_ca)


@pytest.mark.parametrize("damage", ["missing", "garbage", "foreign key"])
def test_a_damaged_certificate_is_made_again(tmp_path: Path, damage: str) -> None:
    made = pki.ensure(tmp_path)
    first = files(tmp_path)
    if damage == "missing":
        made.cert("worker").unlink()
    elif damage == "garbage":
        made.cert("worker").write_text("not a certificate")
    else:
        made.key("worker").write_bytes(made.key("gateway").read_bytes())
    pki.ensure(tmp_path)
    second = files(tmp_path)
    assert second["worker.crt"] != first["worker.crt"]
    assert second["gateway.crt"] == first["gateway.crt"] and second["ca.crt"] == first["ca.crt"]
    # The worker's key matches its certificate again.
    pki.ensure(tmp_path)
    assert files(tmp_path) == second


def test_the_command_line_makes_the_directory(tmp_path: Path) -> None:
    target = tmp_path / "pki"
    result = subprocess.run(
        [sys.executable, "-m", "services.common.pki", str(target), "--dns", "sayit.example"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert "PKI ready" in result.stdout
    assert {p.name for p in target.iterdir()} == {
        "ca.crt",
        "ca.key",
        *(f"{s}.{ext}" for s in pki.SERVICES for ext in ("crt", "key")),
    }
    sans = load(target / "gateway.crt").extensions
    names = sans.get_extension_for_class(x509.SubjectAlternativeName).value
    assert "sayit.example" in names.get_values_for_type(x509.DNSName)
