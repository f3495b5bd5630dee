"""The gateway's limits settings (services.gateway.config)."""

from __future__ import annotations

import pytest

from services.common.errors import ConfigError
from services.gateway.config import load_config


def test_gateway_limits_settings() -> None:
    config = load_config({})
    assert config.api_keys_file is None
    assert (config.limits.requests_per_second, config.limits.request_burst) == (50.0, 100)
    assert config.limits.audio_seconds_per_day == 0
    assert config.server.max_message_bytes == 100 * 1024 * 1024
    assert config.max_audio_seconds == 4 * 3600
    with pytest.raises(ConfigError, match="SAYIT_TENANT_REQUEST_BURST must be >= 1"):
        load_config({"SAYIT_TENANT_REQUEST_BURST": "0"})
