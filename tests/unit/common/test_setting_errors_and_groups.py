"""services.common.setting_errors and services.common.shared_settings: bad values become one
ConfigError line per variable; the settings every server shares.

Every environment is a plain dict: nothing here reads or writes os.environ.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest

from devsupport.processes import ROOT
from scripts import settings_doc
from services.common.config import MIB, LogConfig
from services.common.errors import ConfigError
from services.common.settings import (
    HostPort,
    Settings,
)
from services.common.shared_settings import InternalServerSettings, LogSettings, ServerSettings
from tests.support.settings_probe import Probe, config_error, probe

# --- errors: pydantic's ValidationError becomes ConfigError -------------------------------------


def test_every_bad_variable_is_named_one_per_line() -> None:
    with pytest.raises(ConfigError) as caught:
        probe(int="x", bounded_int="0", flag="maybe", addr="nohost")
    assert str(caught.value).splitlines() == [
        "SAYIT_TEST_INT must be an integer; got 'x'",
        "SAYIT_TEST_BOUNDED_INT must be >= 1; got 0",
        "SAYIT_TEST_FLAG must be true or false (1/0, yes/no, on/off); got 'maybe'",
        "SAYIT_TEST_ADDR must be host:port (e.g. 127.0.0.1:50051); got 'nohost'",
    ]


def test_the_error_shows_the_value_as_it_was_set() -> None:
    # The variable's own spelling, not what validation made of it (lower case, stripped).
    with config_error("SAYIT_TEST_CHOICE must be one of debug, info, warning; got 'LOUD'"):
        Probe.from_env({"sayit_test_choice": " LOUD "})


def test_an_error_has_no_pydantic_traceback_or_url() -> None:
    with pytest.raises(ConfigError) as caught:
        probe(float="fast")
    assert caught.value.__cause__ is None and caught.value.__suppress_context__
    assert "pydantic" not in str(caught.value) and "errors.pydantic.dev" not in str(caught.value)


def test_a_type_without_its_own_message_still_names_the_variable() -> None:
    class Odd(Settings):
        test_list: tuple[int, ...] = ()

    with pytest.raises(ConfigError, match=r"^SAYIT_TEST_LIST: .*; got '\[\"a\"\]'$"):
        Odd.from_env({"SAYIT_TEST_LIST": '["a"]'})


# --- shared server settings ----------------------------------------------------------------------


class Server(ServerSettings):
    x_addr: HostPort = "127.0.0.1:50099"


def test_server_settings_defaults() -> None:
    settings = Server.from_env({})
    config = settings.server_config(settings.x_addr)
    assert config.addr == "127.0.0.1:50099"
    assert config.max_message_bytes == 100 * MIB == 104_857_600
    assert config.shutdown_grace_seconds == 30.0
    assert config.log == LogConfig(level="info", format="auto")
    assert config.tls is None and config.client_tls is None


def test_server_settings_from_environment() -> None:
    settings = Server.from_env(
        {
            "SAYIT_X_ADDR": "[::]:6000",
            "SAYIT_MAX_REQUEST_BYTES": "2048",
            "SAYIT_SHUTDOWN_GRACE_SECONDS": "0",
            "SAYIT_LOG_LEVEL": "DEBUG",
            "SAYIT_LOG_FORMAT": "json",
        }
    )
    config = settings.server_config(settings.x_addr)
    assert config.addr == "[::]:6000"
    assert config.max_message_bytes == 2048
    assert config.shutdown_grace_seconds == 0.0
    assert config.log == LogConfig(level="debug", format="json")


@pytest.mark.parametrize(
    ("environ", "message"),
    [
        ({"SAYIT_X_ADDR": "nohost"}, "SAYIT_X_ADDR must be host:port"),
        ({"SAYIT_MAX_REQUEST_BYTES": "1023"}, "SAYIT_MAX_REQUEST_BYTES must be >= 1024; got 1023"),
        (
            {"SAYIT_MAX_REQUEST_BYTES": str(2**31)},
            "SAYIT_MAX_REQUEST_BYTES must be <= 2147483647; got 2147483648",
        ),
        ({"SAYIT_MAX_REQUEST_BYTES": "100MB"}, "SAYIT_MAX_REQUEST_BYTES must be an integer"),
        (
            {"SAYIT_SHUTDOWN_GRACE_SECONDS": "-1"},
            "SAYIT_SHUTDOWN_GRACE_SECONDS must be >= 0.0; got -1.0",
        ),
        ({"SAYIT_LOG_LEVEL": "trace"}, "SAYIT_LOG_LEVEL must be one of debug, info, warning"),
        ({"SAYIT_LOG_FORMAT": "xml"}, "SAYIT_LOG_FORMAT must be one of auto, json, console"),
    ],
)
def test_server_settings_reject(environ: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=f"^{re.escape(message)}"):
        Server.from_env(environ)


def test_log_settings_defaults() -> None:
    assert LogSettings.from_env({}).log == LogConfig(level="info", format="auto")


# --- every program -------------------------------------------------------------------------------


def test_every_settings_class_starts_from_an_empty_environment() -> None:
    # Defaults are validated too: a bad one would stop every start. The gateway alone needs a
    # choice made: API keys (a keys file) or none (SAYIT_AUTH=off); the internal servers need
    # their mutual TLS files, or internal TLS turned off explicitly.
    choices = {"GatewaySettings": {"SAYIT_AUTH": "off"}}
    for settings in settings_doc.SETTINGS:
        environ = choices.get(settings.__name__, {})
        if issubclass(settings, InternalServerSettings):
            with pytest.raises(ConfigError, match="SAYIT_INTERNAL_TLS is on"):
                settings.from_env(environ)
            assert settings.from_env({**environ, "SAYIT_INTERNAL_TLS": "off"}) is not None
        else:
            assert settings.from_env(environ) is not None, settings.__name__


def test_the_gateway_does_not_start_without_keys_unless_auth_is_off() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SAYIT_")}
    result = subprocess.run(
        [sys.executable, "-m", "services.gateway"],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 2, result.stderr
    assert result.stderr.startswith(
        "gateway: bad configuration: SAYIT_API_KEYS_FILE is not set and the gateway requires "
        "API keys"
    ), result.stderr
    assert "or set SAYIT_AUTH=off to let every caller in without a key" in result.stderr


@pytest.mark.parametrize(
    ("argv", "variable", "message"),
    [
        (["-m", "services.gateway"], "SAYIT_GATEWAY_ADDR", "gateway: bad configuration: "),
        (["-m", "services.scheduler"], "SAYIT_SCHEDULER_ADDR", "scheduler: bad configuration: "),
        (
            ["-m", "services.transcriber"],
            "SAYIT_TRANSCRIBER_ADDR",
            "transcriber: bad configuration: ",
        ),
        (["-m", "services.worker"], "SAYIT_TRANSCRIBER_ADDR", "worker: bad configuration: "),
        (["-m", "services.http_edge"], "SAYIT_HTTP_ADDR", "http edge: bad configuration: "),
        (
            ["-m", "services.common.healthcheck", "127.0.0.1:1"],
            "SAYIT_TLS_CA_FILE",
            "healthcheck: bad configuration: ",
        ),
        (
            ["-m", "scripts.mesh", "status"],
            "SAYIT_GATEWAY_ADDR",
            "make status: bad configuration: ",
        ),
    ],
)
def test_a_bad_value_stops_the_program_with_exit_2(
    argv: list[str], variable: str, message: str
) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SAYIT_")}
    env[variable] = "/nonexistent" if variable.endswith("_FILE") else "no-port"
    result = subprocess.run(
        [sys.executable, *argv], env=env, cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 2, result.stderr
    assert result.stderr.startswith(message + variable), result.stderr
