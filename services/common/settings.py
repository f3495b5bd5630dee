"""Settings: every SAYIT_* variable is a typed, validated, documented field of a frozen object.

Each deployable (gateway, scheduler, transcriber, worker, the `sayit` CLI, the dev tools in
devsupport/settings.py) has one `Settings` class, built from the groups several of them share
(services/common/shared_settings.py) and this module's field types. A field maps 1:1 to its
variable (`scheduler_addr` <-> SAYIT_SCHEDULER_ADDR); its `description` is the meaning column of
docs/configuration.md's table (`make docs` writes it).

A process reads its settings once, in its __main__, with `Settings.from_env(os.environ)`, and
passes them (or the plain config objects derived from them) down; nothing below __main__ reads
the environment. A value that is empty or only whitespace is unset; defaults are validated
too (pydantic-settings' validate_default), so a bad one fails every start. A bad value raises
ConfigError with one line per bad variable (services/common/setting_errors.py).
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from contextvars import ContextVar
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal, Self

from pydantic import (
    AfterValidator,
    BeforeValidator,
    PlainSerializer,
    PlainValidator,
    ValidationError,
)
from pydantic_core import PydanticCustomError
from pydantic_settings import (
    BaseSettings,
    EnvSettingsSource,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

from services.common.errors import ConfigError
from services.common.setting_errors import SETTING_ERROR, describe

PREFIX = "SAYIT_"
# The error type of the checks below; ctx["message"] follows the variable's name.
_ADDR = re.compile(r"^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9_.-]+):(\d{1,5})$")
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


def invalid(message: str, *, show_value: bool = True) -> PydanticCustomError:
    """A bad value: `message` follows the variable's name ("must be ..." or ": ..."), then
    "; got <value>" unless show_value is False (the message says what was wrong already)."""
    return PydanticCustomError(
        SETTING_ERROR, "{message}", {"message": message, "show_value": show_value}
    )


# --- value types ---------------------------------------------------------------------------------


def _int(value: Any) -> Any:
    # Python's int(), not pydantic's: "2.0" is not an integer setting.
    if isinstance(value, str):
        try:
            return int(value)
        except ValueError:
            raise invalid("must be an integer") from None
    return value


def _flag(value: Any) -> Any:
    if isinstance(value, str):
        if value.strip().lower() in _TRUE:
            return True
        if value.strip().lower() in _FALSE:
            return False
        raise invalid("must be true or false (1/0, yes/no, on/off)")
    return value


def _lower(value: Any) -> Any:
    return value.strip().lower() if isinstance(value, str) else value


def _host_port(value: str) -> str:
    match = _ADDR.match(value)
    if not match or not 0 <= int(match.group(2)) <= 65535:
        raise invalid("must be host:port (e.g. 127.0.0.1:50051)")
    return value


def _host_port_or_off(value: str) -> str:
    return value and _host_port(value)


def _expand(path: Path) -> Path:
    return path.expanduser()


def _comma_list(value: Any) -> Any:
    if isinstance(value, str):
        return tuple(item.strip() for item in value.split(",") if item.strip())
    return value


@dataclass(frozen=True)
class Pem:
    """A PEM file, read when the settings are."""

    path: Path
    content: bytes = field(repr=False)


def _pem(value: Any) -> Pem:
    if isinstance(value, Pem):
        return value
    path = Path(str(value)).expanduser()
    try:
        content = path.read_bytes()
    except OSError as error:
        raise invalid(
            f": cannot read {path}: {error.strerror or error}", show_value=False
        ) from None
    if b"-----BEGIN" not in content:
        raise invalid(f": {path} is not a PEM file", show_value=False)
    return Pem(path, content)


# Choices (Literal) are matched case-insensitively: Annotated[Literal["a", "b"], Lowercase].
Lowercase = BeforeValidator(_lower)
Int = Annotated[int, BeforeValidator(_int)]
Flag = Annotated[bool, BeforeValidator(_flag)]
# host:port, a bracketed IPv6 address or a name with a port: what a server listens on.
HostPort = Annotated[str, AfterValidator(_host_port)]
# host:port, or "" for off (unset, empty or blank).
OptionalHostPort = Annotated[str, AfterValidator(_host_port_or_off)]
ExpandedPath = Annotated[Path, AfterValidator(_expand)]
# Comma-separated, blanks dropped (not JSON, as pydantic-settings would read a tuple).
CommaList = Annotated[tuple[str, ...], NoDecode, BeforeValidator(_comma_list)]
# Dumped as its path: private keys stay out of logs.
PemFile = Annotated[Pem, NoDecode, PlainValidator(_pem), PlainSerializer(lambda pem: str(pem.path))]
LogLevel = Literal["debug", "info", "warning", "error"]
LogFormat = Literal["auto", "json", "console"]


class KeepEmpty:
    """Field metadata: an empty value is a value (e.g. "" = off), not "unset"."""


# --- the base class ------------------------------------------------------------------------------

# The environment `from_env` reads; None: os.environ (a plain `SomeSettings()`).
_ENVIRON: ContextVar[Mapping[str, str] | None] = ContextVar("sayit_environ", default=None)


class _Environment(EnvSettingsSource):
    """pydantic-settings' own environment source, over a given mapping: values stripped, and
    blank ones unset unless their field is KeepEmpty."""

    def __init__(self, settings_cls: type[BaseSettings], environ: Mapping[str, str]) -> None:
        keep = {
            _field_env_name(settings_cls, name).lower()
            for name, info in settings_cls.model_fields.items()
            if any(m is KeepEmpty or isinstance(m, KeepEmpty) for m in info.metadata)
        }
        self._environ = {k: v.strip() for k, v in environ.items() if v.strip() or k.lower() in keep}
        super().__init__(settings_cls)

    def _load_env_vars(self) -> Mapping[str, str | None]:
        return {k.lower(): v for k, v in self._environ.items()}


class Settings(BaseSettings):
    """Base of every settings class: SAYIT_* variables, frozen, other variables ignored."""

    model_config = SettingsConfigDict(
        env_prefix=PREFIX,
        frozen=True,
        extra="ignore",
        case_sensitive=False,
        env_ignore_empty=True,
        allow_inf_nan=False,
        # `model` and `model_cache_dir` are settings (SAYIT_MODEL...), whatever the version's
        # default protected namespaces.
        protected_namespaces=("model_validate", "model_dump", "settings_customise_sources"),
    )
    # Who reads these settings, for the table's "used by" column; "" for the shared groups.
    used_by: ClassVar[str] = ""

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # Keyword arguments, then the environment; no .env files, no secrets directory.
        environ = _ENVIRON.get()
        return (
            init_settings,
            _Environment(settings_cls, os.environ if environ is None else environ),
        )

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> Self:
        """The settings in `environ`; ConfigError names every bad variable."""
        token = _ENVIRON.set(environ)
        try:
            return cls()
        except ValidationError as error:
            raise ConfigError(describe(cls, error, environ)) from None
        finally:
            _ENVIRON.reset(token)

    @classmethod
    def env_name(cls, field_name: str) -> str:
        return _field_env_name(cls, field_name)

    @classmethod
    def env_names(cls) -> dict[str, str]:
        """Variable name -> field name, for every field."""
        return {cls.env_name(name): name for name in cls.model_fields}


def _field_env_name(cls: type[BaseSettings], field_name: str) -> str:
    alias = cls.model_fields[field_name].validation_alias
    return alias if isinstance(alias, str) else f"{PREFIX}{field_name.upper()}"


def doc(default: str) -> dict[str, Any]:
    """json_schema_extra of a field whose default the table describes in words."""
    return {"doc_default": default}
