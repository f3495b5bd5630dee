"""services.common.config (Env and the shared server settings) and services.transcriber.config.

Every environment is a plain dict: nothing here reads or writes os.environ.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from services.common.config import MIB, Env, LogConfig, load_log_config, load_server_config
from services.common.errors import ConfigError
from services.scheduler.config import load_config as scheduler_config
from services.transcriber import config as transcriber_config
from services.transcriber.config import DEFAULT_ADDR, batches, load_config, load_model_config

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


# --- transcriber settings ------------------------------------------------------------------------


@pytest.fixture
def eight_cpus(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(transcriber_config.os, "cpu_count", lambda: 8)


def test_transcriber_defaults(eight_cpus: None) -> None:
    config = load_config({})
    assert DEFAULT_ADDR == "127.0.0.1:50053"
    assert config.server.addr == "127.0.0.1:50053"
    assert config.server.max_message_bytes == 100 * MIB
    assert config.server.shutdown_grace_seconds == 30.0
    assert config.model.name == "base"
    assert config.model.models_dir is None
    assert config.model.cache_dir == Path.home() / ".cache" / "sayit" / "models"
    assert config.slots == 1
    assert config.cpu_threads == 8
    assert config.max_audio_seconds == 4 * 3600.0
    assert (config.batch_size, config.batch_min_seconds) == (0, 30.0)  # measured: off
    assert config.batch_languages == {"en"}  # the only language that kept its accuracy


def test_transcriber_batching_settings() -> None:
    config = load_config({"SAYIT_BATCH_SIZE": "8", "SAYIT_BATCH_MIN_SECONDS": "120"})
    assert (config.batch_size, config.batch_min_seconds) == (8, 120.0)
    with pytest.raises(ConfigError, match="SAYIT_BATCH_SIZE"):
        load_config({"SAYIT_BATCH_SIZE": "-1"})
    assert load_config({"SAYIT_BATCH_LANGUAGES": " en, KO "}).batch_languages == {"en", "ko"}
    assert load_config({"SAYIT_BATCH_LANGUAGES": ""}).batch_languages == {"en"}  # unset
    with pytest.raises(ConfigError, match=r"SAYIT_BATCH_LANGUAGES: unknown language code.*kr"):
        load_config({"SAYIT_BATCH_LANGUAGES": "en,kr"})


def test_transcriber_lets_one_call_per_slot_wait_for_a_slot() -> None:
    assert load_config({}).waiting == 1
    assert load_config({"SAYIT_TRANSCRIBER_SLOTS": "3"}).waiting == 3
    assert (
        load_config({"SAYIT_TRANSCRIBER_SLOTS": "3", "SAYIT_TRANSCRIBER_WAITING": "0"}).waiting == 0
    )
    with pytest.raises(ConfigError, match="SAYIT_TRANSCRIBER_WAITING"):
        load_config({"SAYIT_TRANSCRIBER_WAITING": "-1"})


def test_scheduler_sends_one_job_ahead_per_direct_slot() -> None:
    assert (scheduler_config({}).direct_slots, scheduler_config({}).direct_ahead) == (2, 2)
    assert scheduler_config({"SAYIT_DIRECT_SLOTS": "4"}).direct_ahead == 4
    assert scheduler_config({"SAYIT_DIRECT_AHEAD": "0"}).direct_ahead == 0
    with pytest.raises(ConfigError, match="SAYIT_DIRECT_AHEAD"):
        scheduler_config({"SAYIT_DIRECT_AHEAD": "x"})


def test_transcriber_huge_pages_setting() -> None:
    assert load_config({}).huge_pages is True
    assert load_config({"SAYIT_HUGE_PAGES": "off"}).huge_pages is False
    with pytest.raises(ConfigError, match="SAYIT_HUGE_PAGES"):
        load_config({"SAYIT_HUGE_PAGES": "maybe"})


@pytest.mark.parametrize(
    ("env", "seconds", "language", "expected"),
    [
        ({"SAYIT_BATCH_SIZE": "8"}, 231.0, "en", True),
        ({"SAYIT_BATCH_SIZE": "8"}, 181.0, "ko", False),  # Korean is not in the default list
        ({"SAYIT_BATCH_SIZE": "8"}, 231.0, "", False),  # no language given: not known in time
        ({"SAYIT_BATCH_SIZE": "8"}, 29.0, "en", False),  # shorter than SAYIT_BATCH_MIN_SECONDS
        ({}, 231.0, "en", False),  # off by default
        ({"SAYIT_BATCH_SIZE": "1"}, 231.0, "en", False),  # a batch of one is sequential
        ({"SAYIT_BATCH_SIZE": "8", "SAYIT_BATCH_LANGUAGES": "en,ko"}, 181.0, "ko", True),
    ],
)
def test_which_requests_are_batched(
    env: dict[str, str], seconds: float, language: str, expected: bool
) -> None:
    assert batches(load_config(env), seconds, language) is expected


@pytest.mark.parametrize(("slots", "threads"), [(1, 8), (2, 4), (3, 2), (8, 1), (16, 1), (64, 1)])
def test_transcriber_threads_share_the_cores(eight_cpus: None, slots: int, threads: int) -> None:
    config = load_config({"SAYIT_TRANSCRIBER_SLOTS": str(slots)})
    assert (config.slots, config.cpu_threads) == (slots, threads)


def test_transcriber_threads_when_cpu_count_is_unknown(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(transcriber_config.os, "cpu_count", lambda: None)
    assert load_config({}).cpu_threads == 1


def test_transcriber_explicit_threads_win(eight_cpus: None) -> None:
    config = load_config({"SAYIT_TRANSCRIBER_SLOTS": "4", "SAYIT_CPU_THREADS": "3"})
    assert (config.slots, config.cpu_threads) == (4, 3)


def test_transcriber_settings_from_environment(eight_cpus: None) -> None:
    config = load_config(
        {
            "SAYIT_TRANSCRIBER_ADDR": "0.0.0.0:6001",
            "SAYIT_MODEL": "small",
            "SAYIT_MODELS_DIR": "/srv/models",
            "SAYIT_MODEL_CACHE_DIR": "/var/cache/sayit",
            "SAYIT_MAX_AUDIO_SECONDS": "60",
            "XDG_CACHE_HOME": "/ignored/because/explicit",
        }
    )
    assert config.server.addr == "0.0.0.0:6001"
    assert config.model.name == "small"
    assert config.model.models_dir == Path("/srv/models")
    assert config.model.cache_dir == Path("/var/cache/sayit")
    assert config.max_audio_seconds == 60.0


def test_transcriber_cache_dir_under_xdg_cache_home() -> None:
    model = load_model_config(Env({"XDG_CACHE_HOME": "/tmp/xdg"}))
    assert model.cache_dir == Path("/tmp/xdg/sayit/models")
    # Blank XDG_CACHE_HOME is the same as unset.
    model = load_model_config(Env({"XDG_CACHE_HOME": "  "}))
    assert model.cache_dir == Path.home() / ".cache" / "sayit" / "models"


def test_transcriber_models_dir_expands_user() -> None:
    model = load_model_config(Env({"SAYIT_MODELS_DIR": "~/whisper"}))
    assert model.models_dir == Path.home() / "whisper"


@pytest.mark.parametrize(
    ("environ", "message"),
    [
        ({"SAYIT_TRANSCRIBER_SLOTS": "0"}, "SAYIT_TRANSCRIBER_SLOTS must be >= 1; got 0"),
        ({"SAYIT_TRANSCRIBER_SLOTS": "65"}, "SAYIT_TRANSCRIBER_SLOTS must be <= 64; got 65"),
        (
            {"SAYIT_TRANSCRIBER_SLOTS": "two"},
            "SAYIT_TRANSCRIBER_SLOTS must be an integer; got 'two'",
        ),
        ({"SAYIT_CPU_THREADS": "0"}, "SAYIT_CPU_THREADS must be >= 1; got 0"),
        ({"SAYIT_CPU_THREADS": "257"}, "SAYIT_CPU_THREADS must be <= 256; got 257"),
        ({"SAYIT_MAX_AUDIO_SECONDS": "0.5"}, "SAYIT_MAX_AUDIO_SECONDS must be >= 1.0; got 0.5"),
        (
            {"SAYIT_TRANSCRIBER_ADDR": "127.0.0.1:70000"},
            "SAYIT_TRANSCRIBER_ADDR must be host:port (e.g. 127.0.0.1:50051); "
            "got '127.0.0.1:70000'",
        ),
    ],
)
def test_transcriber_rejects(environ: dict[str, str], message: str) -> None:
    with config_error(message):
        load_config(environ)
