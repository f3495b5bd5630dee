"""services.common.peers: the calling service, from the SPIFFE ID of its certificate in the
call's TLS auth context (tests/e2e/test_service_identity.py calls the real services)."""

from __future__ import annotations

from typing import Any

import grpc
import pytest

from services.common.errors import PermissionDenied, Unauthenticated
from services.common.peers import PeerCheck, peer_service


class Context:
    def __init__(self, auth: dict[str, list[bytes]]) -> None:
        self._auth = auth

    def auth_context(self) -> dict[str, list[bytes]]:
        return self._auth


def context(auth: dict[str, list[bytes]]) -> Any:
    return Context(auth)


@pytest.mark.parametrize(
    ("auth", "service"),
    [
        ({}, None),  # plaintext
        ({"transport_security_type": [b"ssl"], "x509_common_name": [b"gateway"]}, None),
        ({"peer_spiffe_id": [b"spiffe://sayit/gateway"]}, "gateway"),
        ({"peer_spiffe_id": [b"spiffe://elsewhere/gateway"]}, None),
    ],
    ids=["plaintext", "common-name-only", "ours", "another-trust-domain"],
)
def test_the_service_is_the_spiffe_id_of_our_trust_domain(auth: dict, service: str | None) -> None:
    # A CN alone names nothing: any certificate of the CA could carry any CN.
    assert peer_service(context(auth)) == service


def test_only_allowed_services_pass() -> None:
    check = PeerCheck(frozenset({"scheduler", "worker"}), "sayit.transcriber.v1.TranscriberService")
    check.check(context({"peer_spiffe_id": [b"spiffe://sayit/worker"]}))
    with pytest.raises(PermissionDenied) as denied:
        check.check(context({"peer_spiffe_id": [b"spiffe://sayit/gateway"]}))
    assert denied.value.code == grpc.StatusCode.PERMISSION_DENIED
    assert denied.value.message == (
        "service 'gateway' may not call the sayit.transcriber.v1.TranscriberService; it accepts "
        "calls from scheduler, worker only"
    )
    with pytest.raises(Unauthenticated) as unknown:
        check.check(context({}))
    assert "this call presented none" in unknown.value.message
