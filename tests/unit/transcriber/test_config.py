"""services.transcriber.config.

Every environment is a plain dict: nothing here reads or writes os.environ.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from services.common.config import MIB
from services.common.errors import ConfigError
from services.transcriber import config as transcriber_config
from services.transcriber.config import DEFAULT_ADDR, ModelSettings, TranscriberConfig, batches
from services.transcriber.config import load_config as load_transcriber_config


def load_config(environ: dict[str, str]) -> TranscriberConfig:
    # About the other settings: internal TLS has its own tests (tests/unit/common/test_peers.py).
    return load_transcriber_config({"SAYIT_INTERNAL_TLS": "off", **environ})


def config_error(message: str) -> Any:
    """pytest.raises for a ConfigError whose message is exactly `message`."""
    return pytest.raises(ConfigError, match=f"^{re.escape(message)}$")


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
    model = ModelSettings.from_env({"XDG_CACHE_HOME": "/tmp/xdg"}).model_files
    assert model.cache_dir == Path("/tmp/xdg/sayit/models")
    # Blank XDG_CACHE_HOME is the same as unset.
    model = ModelSettings.from_env({"XDG_CACHE_HOME": "  "}).model_files
    assert model.cache_dir == Path.home() / ".cache" / "sayit" / "models"


def test_transcriber_models_dir_expands_user() -> None:
    model = ModelSettings.from_env({"SAYIT_MODELS_DIR": "~/whisper"}).model_files
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
