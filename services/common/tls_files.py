"""Certificate files that are read again when they change (rotation without a restart).

cert-manager, a Kubernetes secret mount or an operator replaces the files of a running service;
`TLSFiles.watch()` notices it. A check costs a few `stat` calls and runs at most every
`CHECK_SECONDS`, since gRPC asks on every new handshake and a channel on every call. Changed
files are read and checked (they parse, the key matches the certificate) before they are used:
a half-written or mismatched set is refused with one logged error, and the old set stays in use.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from services.common import logs

log = logs.get_logger("sayit.tls")

CHECK_SECONDS = 5.0


@dataclass(frozen=True)
class TLSMaterial:
    """What one reading of the files held (None where no file is configured)."""

    certificate_chain: bytes | None = field(default=None, repr=False)
    private_key: bytes | None = field(default=None, repr=False)
    ca: bytes | None = field(default=None, repr=False)

    @property
    def fingerprint(self) -> str:
        digest = hashlib.sha256()
        for part in (self.certificate_chain, self.private_key, self.ca):
            digest.update(b"-" if part is None else hashlib.sha256(part).digest())
        return digest.hexdigest()


@dataclass(frozen=True)
class TLSFiles:
    """Where a service's certificate, key and CA live. `ca` is the client CA for a server and
    the CA that verifies servers for a caller."""

    certificate_chain: Path | None = None
    private_key: Path | None = None
    ca: Path | None = None

    def paths(self) -> list[Path]:
        return [p for p in (self.certificate_chain, self.private_key, self.ca) if p is not None]

    def read(self) -> TLSMaterial:
        """The files' contents, checked; ValueError (naming the file) if they are not usable."""
        material = self._read_unchecked()
        _check(self, material)
        return material

    def _read_unchecked(self) -> TLSMaterial:
        slots = (self.certificate_chain, self.private_key, self.ca)
        return TLSMaterial(*(None if p is None else p.read_bytes() for p in slots))

    def watch(
        self, current: TLSMaterial, check_seconds: float | None = None
    ) -> Callable[[], TLSMaterial | None]:
        """A function that returns new material when the files changed, else None."""
        seconds = CHECK_SECONDS if check_seconds is None else check_seconds
        return _Watch(self, current, seconds).poll


def _check(files: TLSFiles, material: TLSMaterial) -> None:
    try:
        ca = material.ca
        if ca is not None and not x509.load_pem_x509_certificates(ca):
            raise ValueError("no certificate")
    except ValueError as error:
        raise ValueError(f"{files.ca}: {error}") from None
    if material.certificate_chain is None or material.private_key is None:
        return
    try:
        leaf = x509.load_pem_x509_certificates(material.certificate_chain)[0]
    except (ValueError, IndexError) as error:
        raise ValueError(f"{files.certificate_chain}: {error}") from None
    try:
        key = serialization.load_pem_private_key(material.private_key, None)
    except (ValueError, TypeError) as error:
        raise ValueError(f"{files.private_key}: {error}") from None
    raw = serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    if key.public_key().public_bytes(*raw) != leaf.public_key().public_bytes(*raw):
        raise ValueError(f"{files.private_key} is not the key of {files.certificate_chain}")


class _Watch:
    def __init__(self, files: TLSFiles, current: TLSMaterial, check_seconds: float) -> None:
        self._files = files
        self._fingerprint = current.fingerprint
        self._check_seconds = check_seconds
        self._next_check = time.monotonic() + check_seconds
        self._stats = self._stat()
        self._refused = ""  # the fingerprint of a bad set already logged

    def _stat(self) -> list[tuple[int, int, int]]:
        # Secret mounts swap a symlink: stat follows it, so inode and mtime change.
        stats = []
        for path in self._files.paths():
            try:
                st = path.stat()
            except OSError:
                stats.append((-1, -1, -1))
            else:
                stats.append((st.st_ino, st.st_mtime_ns, st.st_size))
        return stats

    def poll(self) -> TLSMaterial | None:
        now = time.monotonic()
        if now < self._next_check:
            return None
        self._next_check = now + self._check_seconds
        stats = self._stat()
        if stats == self._stats:
            return None
        self._stats = stats
        try:
            material = self._files._read_unchecked()
        except OSError as error:
            self._refuse(str(error), f"unreadable:{error}")
            return None
        if material.fingerprint == self._fingerprint:
            return None  # touched, same contents
        try:
            _check(self._files, material)
        except Exception as error:  # gRPC's fetcher must not raise: the old set stays
            self._refuse(str(error) or type(error).__name__, material.fingerprint)
            return None
        self._fingerprint = material.fingerprint
        self._refused = ""
        log.info("tls_files_reloaded", files=[str(p) for p in self._files.paths()])
        return material

    def _refuse(self, reason: str, fingerprint: str) -> None:
        # Stats are forgotten so the next check looks again (a writer may still be writing).
        self._stats = []
        if fingerprint != self._refused:
            self._refused = fingerprint
            log.error("tls_files_refused", reason=reason, keeping="the certificates in use")
