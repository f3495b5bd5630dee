"""A settings class with one field of each kind (SAYIT_TEST_*), for the settings tests."""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

import pytest
from pydantic import Field

from services.common.errors import ConfigError
from services.common.settings import (
    ExpandedPath,
    Flag,
    HostPort,
    Int,
    Lowercase,
    OptionalHostPort,
    Settings,
)


class Probe(Settings):
    """One field of each kind, read from SAYIT_TEST_*."""

    test_str: str = "fallback"
    test_choice: Annotated[Literal["debug", "info", "warning"], Lowercase] = "info"
    test_int: Int = 99
    test_bounded_int: Int = Field(3, ge=1, le=64)
    test_float: float = 9.0
    test_bounded_float: float = Field(1.0, ge=0.0, le=10.0)
    test_flag: Flag = False
    test_true_flag: Flag = True
    test_addr: HostPort = "127.0.0.1:1"
    test_metrics_addr: OptionalHostPort = ""
    test_path: ExpandedPath | None = None
    test_optional_int: Int | None = Field(None, ge=0, le=5)


def probe(**values: str) -> Probe:
    return Probe.from_env({f"SAYIT_TEST_{k.upper()}": v for k, v in values.items()})


def config_error(message: str) -> Any:
    """pytest.raises for a ConfigError whose message is exactly `message`."""
    return pytest.raises(ConfigError, match=f"^{re.escape(message)}$")
