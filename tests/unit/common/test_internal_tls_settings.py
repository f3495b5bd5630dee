"""SAYIT_INTERNAL_TLS and SAYIT_TLS_ALLOWED_PEERS (services.common.shared_settings): the
scheduler and transcribers need mutual TLS unless it is turned off explicitly, and say who may
call them.

Every environment is a plain dict: nothing here reads or writes os.environ.
"""

from __future__ import annotations

import pytest

from services.common import pki
from services.common.errors import ConfigError
from services.scheduler.config import load_config as scheduler_config
from services.transcriber.config import load_config as transcriber_config

REQUIRED = (
    "SAYIT_INTERNAL_TLS is on (the default): set SAYIT_TLS_CERT_FILE, SAYIT_TLS_KEY_FILE and "
    "SAYIT_TLS_CLIENT_CA_FILE (mutual TLS; `python -m services.common.pki DIR` makes a CA and "
    "certificates), or set SAYIT_INTERNAL_TLS=off to accept any caller in plaintext"
)


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> pki.Pki:
    return pki.ensure(tmp_path_factory.mktemp("pki"))


@pytest.mark.parametrize("load", [scheduler_config, transcriber_config])
def test_no_mutual_tls_no_start(load: object, certs: pki.Pki) -> None:
    server_only = {
        "SAYIT_TLS_CERT_FILE": str(certs.cert("scheduler")),
        "SAYIT_TLS_KEY_FILE": str(certs.key("scheduler")),
    }
    for environ in ({}, {"SAYIT_INTERNAL_TLS": "on"}, server_only):
        with pytest.raises(ConfigError) as caught:
            load(environ)  # type: ignore[operator]
        assert str(caught.value) == REQUIRED


def test_each_server_accepts_its_callers_by_default(certs: pki.Pki) -> None:
    scheduler = scheduler_config(certs.server_env("scheduler")).server
    assert scheduler.allowed_peers == {"gateway"}
    assert scheduler.tls is not None and scheduler.tls.mutual
    assert not scheduler.internal_tls_off
    transcriber = transcriber_config(certs.server_env("transcriber")).server
    assert transcriber.allowed_peers == {"scheduler", "worker"}


def test_allowed_peers_are_service_names(certs: pki.Pki) -> None:
    environ = {**certs.server_env("scheduler"), "SAYIT_TLS_ALLOWED_PEERS": " Gateway, worker "}
    assert scheduler_config(environ).server.allowed_peers == {"gateway", "worker"}
    environ["SAYIT_TLS_ALLOWED_PEERS"] = "gateway,admin"
    with pytest.raises(ConfigError) as caught:
        scheduler_config(environ)
    assert str(caught.value) == (
        "SAYIT_TLS_ALLOWED_PEERS names services from gateway, scheduler, transcriber, worker, "
        "operator; unknown: admin; got 'gateway,admin'"
    )


def test_off_is_explicit_and_checks_nobody() -> None:
    server = scheduler_config({"SAYIT_INTERNAL_TLS": "off"}).server
    assert server.tls is None and server.allowed_peers is None and server.internal_tls_off
    with pytest.raises(ConfigError, match="SAYIT_INTERNAL_TLS must be true or false"):
        scheduler_config({"SAYIT_INTERNAL_TLS": "maybe"})
