"""services.common.settings: the value types (strings, choices, numbers, flags, addresses,
paths).

Every environment is a plain dict: nothing here reads or writes os.environ.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import pytest
from pydantic import Field

from services.common.errors import ConfigError
from services.common.settings import (
    HostPort,
    Int,
    KeepEmpty,
    OptionalHostPort,
    Settings,
)
from tests.support.settings_probe import Probe, config_error, probe

# --- strings -------------------------------------------------------------------------------------


def test_str_missing_is_default() -> None:
    assert probe().test_str == "fallback"


@pytest.mark.parametrize("blank", ["", " ", "\t\n "])
def test_blank_is_default(blank: str) -> None:
    settings = probe(str=blank, int=blank, flag=blank, addr=blank, path=blank)
    assert settings == probe()


def test_str_strips_surrounding_whitespace() -> None:
    assert probe(str="  small \n").test_str == "small"


def test_settings_read_only_the_mapping_they_were_given() -> None:
    assert Probe.from_env({"OTHER": "x"}).test_str == "fallback"
    assert Probe.from_env({"SAYIT_TEST_STR": "x"}).test_str == "x"
    assert Probe.from_env({"sayit_test_str": "x"}).test_str == "x"  # names ignore case


def test_settings_are_frozen() -> None:
    settings = probe()
    with pytest.raises(ValueError, match="frozen"):
        settings.test_str = "changed"  # type: ignore[misc]


# --- choices -------------------------------------------------------------------------------------


def test_choice_default_and_case_insensitive() -> None:
    assert probe().test_choice == "info"
    assert probe(choice="").test_choice == "info"
    assert probe(choice="DEBUG").test_choice == "debug"
    assert probe(choice=" Warning ").test_choice == "warning"


def test_choice_rejects_unknown_value_naming_variable_choices_and_value() -> None:
    with config_error("SAYIT_TEST_CHOICE must be one of debug, info, warning; got 'VERBOSE'"):
        probe(choice="VERBOSE")


# --- integers ------------------------------------------------------------------------------------


@pytest.mark.parametrize(("raw", "expected"), [("0", 0), ("42", 42), (" 7 ", 7), ("-3", -3)])
def test_int_parses(raw: str, expected: int) -> None:
    assert probe(int=raw).test_int == expected


@pytest.mark.parametrize("raw", ["abc", "1.5", "2.0", "0x10", "1e3", "5 cores"])
def test_int_rejects_non_integers(raw: str) -> None:
    with config_error(f"SAYIT_TEST_INT must be an integer; got {raw!r}"):
        probe(int=raw)


def test_int_range_is_inclusive() -> None:
    assert probe(bounded_int="1").test_bounded_int == 1
    assert probe(bounded_int="64").test_bounded_int == 64


def test_int_below_min() -> None:
    with config_error("SAYIT_TEST_BOUNDED_INT must be >= 1; got 0"):
        probe(bounded_int="0")


def test_int_above_max() -> None:
    with config_error("SAYIT_TEST_BOUNDED_INT must be <= 64; got 65"):
        probe(bounded_int="65")


def test_optional_int_is_checked_when_set() -> None:
    assert probe().test_optional_int is None
    assert probe(optional_int="0").test_optional_int == 0
    with config_error("SAYIT_TEST_OPTIONAL_INT must be <= 5; got 6"):
        probe(optional_int="6")
    with config_error("SAYIT_TEST_OPTIONAL_INT must be an integer; got 'x'"):
        probe(optional_int="x")


def test_defaults_are_checked_too() -> None:
    class BadDefault(Settings):
        test_low_default: Int = Field(0, ge=1)
        test_addr: HostPort = "nonsense"

    with pytest.raises(ConfigError) as caught:
        BadDefault.from_env({})
    assert str(caught.value).splitlines() == [
        "SAYIT_TEST_LOW_DEFAULT must be >= 1; got 0",
        "SAYIT_TEST_ADDR must be host:port (e.g. 127.0.0.1:50051); got 'nonsense'",
    ]
    assert BadDefault.from_env({"SAYIT_TEST_LOW_DEFAULT": "1", "SAYIT_TEST_ADDR": "h:1"})


# --- numbers -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"), [("0", 0.0), ("2.5", 2.5), ("1e3", 1000.0), (" -0.5 ", -0.5)]
)
def test_float_parses(raw: str, expected: float) -> None:
    assert probe(float=raw).test_float == expected


def test_float_blank_is_default() -> None:
    assert probe(float=" ").test_float == 9.0


def test_float_rejects_text() -> None:
    with config_error("SAYIT_TEST_FLOAT must be a number; got 'fast'"):
        probe(float="fast")


@pytest.mark.parametrize("raw", ["nan", "NaN", "inf", "-inf", "Infinity"])
def test_float_rejects_non_finite(raw: str) -> None:
    with config_error(f"SAYIT_TEST_FLOAT must be a finite number; got {raw!r}"):
        probe(float=raw)


def test_float_range() -> None:
    assert probe(bounded_float="0").test_bounded_float == 0.0
    with config_error("SAYIT_TEST_BOUNDED_FLOAT must be >= 0.0; got -0.1"):
        probe(bounded_float="-0.1")
    with config_error("SAYIT_TEST_BOUNDED_FLOAT must be <= 10.0; got 10.5"):
        probe(bounded_float="10.5")


# --- booleans ------------------------------------------------------------------------------------


@pytest.mark.parametrize("raw", ["1", "true", "TRUE", "True", "yes", "YES", "on", "On", " on "])
def test_flag_true_spellings(raw: str) -> None:
    assert probe(flag=raw).test_flag is True


@pytest.mark.parametrize("raw", ["0", "false", "FALSE", "no", "No", "off", "OFF"])
def test_flag_false_spellings(raw: str) -> None:
    assert probe(true_flag=raw).test_true_flag is False


def test_flag_blank_is_default() -> None:
    assert probe(flag="", true_flag="").test_flag is False
    assert probe(flag="", true_flag="").test_true_flag is True


@pytest.mark.parametrize("raw", ["y", "n", "2", "enabled", "t"])
def test_flag_rejects_other_spellings(raw: str) -> None:
    with config_error(f"SAYIT_TEST_FLAG must be true or false (1/0, yes/no, on/off); got {raw!r}"):
        probe(flag=raw)


# --- addresses -----------------------------------------------------------------------------------


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
def test_addr_accepts_host_port(addr: str) -> None:
    assert probe(addr=addr).test_addr == addr


def test_addr_default_and_stripping() -> None:
    assert probe().test_addr == "127.0.0.1:1"
    assert probe(addr="  localhost:80 ").test_addr == "localhost:80"


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
        ":50051",  # no host
    ],
)
def test_addr_rejects(addr: str) -> None:
    with config_error(
        f"SAYIT_TEST_ADDR must be host:port (e.g. 127.0.0.1:50051); got {addr.strip()!r}"
    ):
        probe(addr=addr)


def test_optional_addr_is_off_when_unset_or_blank() -> None:
    assert probe().test_metrics_addr == ""
    assert probe(metrics_addr=" ").test_metrics_addr == ""
    assert probe(metrics_addr="0.0.0.0:9150").test_metrics_addr == "0.0.0.0:9150"
    with config_error(
        "SAYIT_TEST_METRICS_ADDR must be host:port (e.g. 127.0.0.1:50051); got '9150'"
    ):
        probe(metrics_addr="9150")


def test_keep_empty_makes_an_empty_value_a_value() -> None:
    class OnByDefault(Settings):
        test_endpoint: Annotated[OptionalHostPort, KeepEmpty] = "127.0.0.1:9150"

    assert OnByDefault.from_env({}).test_endpoint == "127.0.0.1:9150"
    assert OnByDefault.from_env({"SAYIT_TEST_ENDPOINT": ""}).test_endpoint == ""  # off
    assert OnByDefault.from_env({"SAYIT_TEST_ENDPOINT": "  "}).test_endpoint == ""


# --- paths ---------------------------------------------------------------------------------------


def test_path() -> None:
    assert probe().test_path is None
    assert probe(path=" ").test_path is None
    assert probe(path="/srv/models").test_path == Path("/srv/models")
    assert probe(path="~/models").test_path == Path.home() / "models"
