"""Reading settings from the environment, once, in each service's __main__.

Every setting is a SAYIT_* variable. A bad value stops start-up with a ConfigError that names the
variable, what it must be and what it was.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from services.common.errors import ConfigError

_ADDR = re.compile(r"^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9_.-]+):(\d{1,5})$")
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}

if TYPE_CHECKING:
    from services.common.tls import ClientTLS, ServerTLS

MIB = 1024 * 1024


class Env:
    """Typed, validated access to a mapping of environment variables."""

    def __init__(self, environ: Mapping[str, str]) -> None:
        self._environ = environ

    def _raw(self, name: str) -> str | None:
        value = self._environ.get(name)
        return None if value is None or value.strip() == "" else value.strip()

    def get_str(self, name: str, default: str) -> str:
        value = self._raw(name)
        return default if value is None else value

    def get_choice(self, name: str, default: str, choices: tuple[str, ...]) -> str:
        value = self.get_str(name, default)
        if value.lower() not in choices:
            raise ConfigError(f"{name} must be one of {', '.join(choices)}; got {value!r}")
        return value.lower()

    def get_int(
        self, name: str, default: int, *, min: int | None = None, max: int | None = None
    ) -> int:
        value = self._raw(name)
        if value is None:
            return default
        try:
            number = int(value)
        except ValueError:
            raise ConfigError(f"{name} must be an integer; got {value!r}") from None
        _check_range(name, number, min, max)
        return number

    def get_float(
        self, name: str, default: float, *, min: float | None = None, max: float | None = None
    ) -> float:
        value = self._raw(name)
        if value is None:
            return default
        try:
            number = float(value)
        except ValueError:
            raise ConfigError(f"{name} must be a number; got {value!r}") from None
        if number != number or number in (float("inf"), float("-inf")):
            raise ConfigError(f"{name} must be a finite number; got {value!r}")
        _check_range(name, number, min, max)
        return number

    def get_bool(self, name: str, default: bool) -> bool:
        value = self._raw(name)
        if value is None:
            return default
        if value.lower() in _TRUE:
            return True
        if value.lower() in _FALSE:
            return False
        raise ConfigError(f"{name} must be true or false (1/0, yes/no, on/off); got {value!r}")

    def get_addr(self, name: str, default: str) -> str:
        value = self.get_str(name, default)
        match = _ADDR.match(value)
        if not match or not 0 <= int(match.group(2)) <= 65535:
            raise ConfigError(f"{name} must be host:port (e.g. 127.0.0.1:50051); got {value!r}")
        return value

    def get_optional_addr(self, name: str) -> str:
        """host:port, or "" when the variable is unset or empty (the feature is off)."""
        return self.get_addr(name, "") if self._raw(name) is not None else ""

    def get_path(self, name: str, default: Path | None) -> Path | None:
        value = self._raw(name)
        return default if value is None else Path(value).expanduser()


def _check_range(name: str, number: float, lo: float | None, hi: float | None) -> None:
    if lo is not None and number < lo:
        raise ConfigError(f"{name} must be >= {lo}; got {number}")
    if hi is not None and number > hi:
        raise ConfigError(f"{name} must be <= {hi}; got {number}")


@dataclass(frozen=True)
class LogConfig:
    level: str
    # "json", "console" or "auto" (JSON unless stderr is a terminal)
    format: str


@dataclass(frozen=True)
class ServerConfig:
    """What every gRPC server needs."""

    addr: str
    # The largest audio a request may carry (SAYIT_MAX_REQUEST_BYTES); the transport allows a
    # little more for the rest of the message (see server.transport_limit).
    max_message_bytes: int
    shutdown_grace_seconds: float
    log: LogConfig
    tls: ServerTLS | None = None
    # For channels to other services (and health checks).
    client_tls: ClientTLS | None = None


def load_log_config(env: Env) -> LogConfig:
    return LogConfig(
        level=env.get_choice("SAYIT_LOG_LEVEL", "info", ("debug", "info", "warning", "error")),
        format=env.get_choice("SAYIT_LOG_FORMAT", "auto", ("auto", "json", "console")),
    )


def load_server_config(env: Env, addr_var: str, default_addr: str) -> ServerConfig:
    from services.common.tls import load_client_tls, load_server_tls

    return ServerConfig(
        addr=env.get_addr(addr_var, default_addr),
        max_message_bytes=env.get_int(
            "SAYIT_MAX_REQUEST_BYTES", 100 * MIB, min=1024, max=2**31 - 1
        ),
        shutdown_grace_seconds=env.get_float("SAYIT_SHUTDOWN_GRACE_SECONDS", 30.0, min=0.0),
        log=load_log_config(env),
        tls=load_server_tls(env),
        client_tls=load_client_tls(env),
    )
