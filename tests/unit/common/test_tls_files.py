"""How often certificate files are looked at, and what counts as a change
(services.common.tls_files; the rotation itself is tested with real servers in
tests/integration/test_tls_rotation.py)."""

from __future__ import annotations

import os
import time
from pathlib import Path

from structlog.testing import capture_logs

from services.common import pki as mesh_pki
from services.common.tls_files import TLSFiles


def files_of(pki: mesh_pki.Pki, service: str) -> TLSFiles:
    return TLSFiles(pki.cert(service), pki.key(service), pki.ca_cert)


def test_changes_are_seen_at_most_every_check_interval(tmp_path: Path) -> None:
    pki = mesh_pki.ensure(tmp_path)
    files = files_of(pki, "gateway")
    changed = files.watch(files.read(), check_seconds=0.3)
    # Another valid set (the scheduler's) put in the gateway's place.
    os.replace(pki.cert("scheduler"), pki.cert("gateway"))
    os.replace(pki.key("scheduler"), pki.key("gateway"))
    assert changed() is None  # not looked at yet: gRPC asks on every handshake
    time.sleep(0.35)
    material = changed()
    assert material is not None and material.certificate_chain == pki.cert("gateway").read_bytes()
    time.sleep(0.35)
    assert changed() is None  # nothing new since


def test_a_file_touched_with_the_same_contents_is_no_change(tmp_path: Path) -> None:
    pki = mesh_pki.ensure(tmp_path)
    files = files_of(pki, "worker")
    changed = files.watch(files.read(), check_seconds=0.0)
    pki.cert("worker").write_bytes(pki.cert("worker").read_bytes())
    os.utime(pki.cert("worker"), ns=(1, 1))
    with capture_logs() as logged:
        assert changed() is None
    assert logged == []


def test_a_missing_file_is_refused_once_and_its_return_is_taken(tmp_path: Path) -> None:
    pki = mesh_pki.ensure(tmp_path)
    files = files_of(pki, "worker")
    changed = files.watch(files.read(), check_seconds=0.0)
    whole_ca = pki.ca_cert.read_bytes()
    pki.ca_cert.unlink()
    with capture_logs() as logged:
        assert changed() is None
        assert changed() is None
    assert [e["event"] for e in logged] == ["tls_files_refused"]
    pki.ca_cert.write_bytes(whole_ca + whole_ca)  # back, as a bundle
    material = changed()
    assert material is not None and material.ca == whole_ca + whole_ca
