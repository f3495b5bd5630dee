"""services.common.config: Env and the shared server settings.

Every environment is a plain dict: nothing here reads or writes os.environ.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from services.common.config import MIB, Env, LogConfig, load_log_config, load_server_config
from services.common.errors import ConfigError

VAR = "SAYIT_TEST_VALUE"


def env(value: str | None = None, **more: str) -> Env:
    environ = dict(more)
    if value is not None:
        environ[VAR] = value
    return Env(environ)


def config_error(message: str) -> Any:
    """pytest.raises for a ConfigError whose message is exactly `message`."""
    return pytest.raises(ConfigError, match=f"^{re.escape(message)}$")


# --- get_str -------------------------------------------------------------------------------------


def test_get_str_missing_is_default() -> None:
    assert env().get_str(VAR, "fallback") == "fallback"


@pytest.mark.parametrize("blank", ["", " ", "\t\n "])
def test_get_str_blank_is_default(blank: str) -> None:
    assert env(blank).get_str(VAR, "fallback") == "fallback"


def test_get_str_strips_surrounding_whitespace() -> None:
    assert env("  small \n").get_str(VAR, "base") == "small"


def test_env_reads_only_the_mapping_it_was_given() -> None:
    assert Env({"OTHER": "x"}).get_str(VAR, "d") == "d"
    assert Env({VAR: "x"}).get_str(VAR, "d") == "x"


# --- get_choice ----------------------------------------------------------------------------------


def test_get_choice_default_and_case_insensitive() -> None:
    choices = ("debug", "info", "warning")
    assert env().get_choice(VAR, "info", choices) == "info"
    assert env("").get_choice(VAR, "info", choices) == "info"
    assert env("DEBUG").get_choice(VAR, "info", choices) == "debug"
    assert env(" Warning ").get_choice(VAR, "info", choices) == "warning"


def test_get_choice_rejects_unknown_value_naming_variable_choices_and_value() -> None:
    with config_error(f"{VAR} must be one of debug, info; got 'VERBOSE'"):
        env("VERBOSE").get_choice(VAR, "info", ("debug", "info"))


# --- get_int -------------------------------------------------------------------------------------


@pytest.mark.parametrize(("raw", "expected"), [("0", 0), ("42", 42), (" 7 ", 7), ("-3", -3)])
def test_get_int_parses(raw: str, expected: int) -> None:
    assert env(raw).get_int(VAR, 99) == expected


@pytest.mark.parametrize("raw", [None, "", "   "])
def test_get_int_missing_or_blank_is_default(raw: str | None) -> None:
    assert env(raw).get_int(VAR, 99, min=1, max=5) == 99


@pytest.mark.parametrize("raw", ["abc", "1.5", "0x10", "1e3", "5 cores"])
def test_get_int_rejects_non_integers(raw: str) -> None:
    with config_error(f"{VAR} must be an integer; got {raw!r}"):
        env(raw).get_int(VAR, 1)


def test_get_int_range_is_inclusive() -> None:
    assert env("1").get_int(VAR, 3, min=1, max=64) == 1
    assert env("64").get_int(VAR, 3, min=1, max=64) == 64


def test_get_int_below_min() -> None:
    with config_error(f"{VAR} must be >= 1; got 0"):
        env("0").get_int(VAR, 3, min=1, max=64)


def test_get_int_above_max() -> None:
    with config_error(f"{VAR} must be <= 64; got 65"):
        env("65").get_int(VAR, 3, min=1, max=64)


def test_get_int_default_is_not_range_checked() -> None:
    # The default is the programmer's choice; only values from the environment are checked.
    assert env().get_int(VAR, 0, min=1) == 0


# --- get_float -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"), [("0", 0.0), ("2.5", 2.5), ("1e3", 1000.0), (" -0.5 ", -0.5)]
)
def test_get_float_parses(raw: str, expected: float) -> None:
    assert env(raw).get_float(VAR, 9.0) == expected


def test_get_float_blank_is_default() -> None:
    assert env(" ").get_float(VAR, 9.5) == 9.5


def test_get_float_rejects_text() -> None:
    with config_error(f"{VAR} must be a number; got 'fast'"):
        env("fast").get_float(VAR, 1.0)


@pytest.mark.parametrize("raw", ["nan", "NaN", "inf", "-inf", "Infinity"])
def test_get_float_rejects_non_finite(raw: str) -> None:
    with config_error(f"{VAR} must be a finite number; got {raw!r}"):
        env(raw).get_float(VAR, 1.0)


def test_get_float_range() -> None:
    assert env("0").get_float(VAR, 1.0, min=0.0) == 0.0
    with config_error(f"{VAR} must be >= 0.0; got -0.1"):
        env("-0.1").get_float(VAR, 1.0, min=0.0)
    with config_error(f"{VAR} must be <= 10.0; got 10.5"):
        env("10.5").get_float(VAR, 1.0, max=10.0)


# --- get_bool ------------------------------------------------------------------------------------


@pytest.mark.parametrize("raw", ["1", "true", "TRUE", "True", "yes", "YES", "on", "On", " on "])
def test_get_bool_true_spellings(raw: str) -> None:
    assert env(raw).get_bool(VAR, False) is True


@pytest.mark.parametrize("raw", ["0", "false", "FALSE", "no", "No", "off", "OFF"])
def test_get_bool_false_spellings(raw: str) -> None:
    assert env(raw).get_bool(VAR, True) is False


@pytest.mark.parametrize("default", [True, False])
def test_get_bool_blank_is_default(default: bool) -> None:
    assert env("").get_bool(VAR, default) is default
    assert env().get_bool(VAR, default) is default


@pytest.mark.parametrize("raw", ["y", "n", "2", "enabled", "t"])
def test_get_bool_rejects_other_spellings(raw: str) -> None:
    with config_error(f"{VAR} must be true or false (1/0, yes/no, on/off); got {raw!r}"):
        env(raw).get_bool(VAR, False)


# --- get_addr ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "addr",
    [
        "127.0.0.1:50051",
        "localhost:50053",
        "transcriber-0.sayit.svc.cluster.local:443",
        "my_host:1",
        "0.0.0.0:0",
        "[::1]:50051",
        "[::]:50051",
        "[fe80::1]:65535",
        "[::ffff:127.0.0.1]:8080",
    ],
)
def test_get_addr_accepts_host_port(addr: str) -> None:
    assert env(addr).get_addr(VAR, "127.0.0.1:1") == addr


def test_get_addr_default_and_stripping() -> None:
    assert env().get_addr(VAR, "127.0.0.1:50053") == "127.0.0.1:50053"
    assert env("  localhost:80 ").get_addr(VAR, "127.0.0.1:1") == "localhost:80"


def test_get_addr_checks_the_default_too() -> None:
    with config_error(f"{VAR} must be host:port (e.g. 127.0.0.1:50051); got 'nonsense'"):
        env().get_addr(VAR, "nonsense")


@pytest.mark.parametrize(
    "addr",
    [
        "localhost",  # no port
        "localhost:",  # empty port
        "127.0.0.1:65536",  # port out of range
        "127.0.0.1:99999",
        "127.0.0.1:123456",  # more than five digits
        "::1:50051",  # IPv6 without brackets
        "[::1]",
        "[zz::1]:50051",
        "http://localhost:50051",
        "local host:50051",
        "localhost:50051/path",
        "localhost:-1",
        "localhost:port",
    ],
)
def test_get_addr_rejects(addr: str) -> None:
    with config_error(f"{VAR} must be host:port (e.g. 127.0.0.1:50051); got {addr!r}"):
        env(addr).get_addr(VAR, "127.0.0.1:1")


def test_get_addr_rejects_empty_host() -> None:
    with config_error(f"{VAR} must be host:port (e.g. 127.0.0.1:50051); got ':50051'"):
        env(":50051").get_addr(VAR, "127.0.0.1:1")


# --- get_path ------------------------------------------------------------------------------------


def test_get_path() -> None:
    assert env().get_path(VAR, None) is None
    assert env(" ").get_path(VAR, Path("/d")) == Path("/d")
    assert env("/srv/models").get_path(VAR, None) == Path("/srv/models")
    assert env("~/models").get_path(VAR, None) == Path.home() / "models"


# --- shared server settings ----------------------------------------------------------------------


def test_load_server_config_defaults() -> None:
    config = load_server_config(Env({}), "SAYIT_X_ADDR", "127.0.0.1:50099")
    assert config.addr == "127.0.0.1:50099"
    assert config.max_message_bytes == 100 * MIB == 104_857_600
    assert config.shutdown_grace_seconds == 30.0
    assert config.log == LogConfig(level="info", format="auto")


def test_load_server_config_from_environment() -> None:
    config = load_server_config(
        Env(
            {
                "SAYIT_X_ADDR": "[::]:6000",
                "SAYIT_MAX_REQUEST_BYTES": "2048",
                "SAYIT_SHUTDOWN_GRACE_SECONDS": "0",
                "SAYIT_LOG_LEVEL": "DEBUG",
                "SAYIT_LOG_FORMAT": "json",
            }
        ),
        "SAYIT_X_ADDR",
        "127.0.0.1:1",
    )
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
def test_load_server_config_rejects(environ: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=f"^{re.escape(message)}"):
        load_server_config(Env(environ), "SAYIT_X_ADDR", "127.0.0.1:1")


def test_load_log_config_defaults() -> None:
    assert load_log_config(Env({})) == LogConfig(level="info", format="auto")
