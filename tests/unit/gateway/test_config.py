"""The gateway's settings (services.gateway.config): limits, and keys on by default."""

from __future__ import annotations

import pytest

from services.common.errors import ConfigError
from services.gateway.config import load_config


def test_gateway_limits_settings() -> None:
    config = load_config({"SAYIT_AUTH": "off"})
    assert config.api_keys_file is None
    assert (config.limits.requests_per_second, config.limits.request_burst) == (50.0, 100)
    assert config.limits.audio_seconds_per_day == 0
    assert config.server.max_message_bytes == 100 * 1024 * 1024
    assert config.max_audio_seconds == 4 * 3600
    with pytest.raises(ConfigError, match="SAYIT_TENANT_REQUEST_BURST must be >= 1"):
        load_config({"SAYIT_AUTH": "off", "SAYIT_TENANT_REQUEST_BURST": "0"})


def test_keys_are_required_unless_auth_is_off_explicitly() -> None:
    with pytest.raises(ConfigError) as refused:
        load_config({})
    message = str(refused.value)
    assert message.startswith("SAYIT_API_KEYS_FILE is not set and the gateway requires API keys")
    assert "SAYIT_AUTH=off" in message
    config = load_config({"SAYIT_API_KEYS_FILE": "~/keys.toml"})
    assert config.api_keys_file is not None and config.api_keys_file.name == "keys.toml"
    assert not str(config.api_keys_file).startswith("~")
    assert config.api_keys_reload_seconds == 2.0
    assert load_config({"SAYIT_AUTH": "OFF"}).api_keys_file is None


def test_auth_off_and_a_keys_file_together_are_refused() -> None:
    with pytest.raises(ConfigError, match="SAYIT_AUTH=off and SAYIT_API_KEYS_FILE are both set"):
        load_config({"SAYIT_AUTH": "off", "SAYIT_API_KEYS_FILE": "/keys.toml"})
    with pytest.raises(ConfigError, match="SAYIT_AUTH must be one of on, off; got 'maybe'"):
        load_config({"SAYIT_AUTH": "maybe", "SAYIT_API_KEYS_FILE": "/keys.toml"})
    with pytest.raises(ConfigError, match="SAYIT_API_KEYS_RELOAD_SECONDS must be > 0"):
        load_config({"SAYIT_API_KEYS_FILE": "/k", "SAYIT_API_KEYS_RELOAD_SECONDS": "0"})
