"""Settings: every SAYIT_* variable is a typed, validated, documented field of a frozen object.

Each deployable (gateway, scheduler, transcriber, worker, the `sayit` CLI, the dev tools in
devsupport/settings.py) has one `Settings` class, built from the groups below that several of
them share. A field maps 1:1 to its variable (`scheduler_addr` <-> SAYIT_SCHEDULER_ADDR); its
`description` is the meaning column of docs/configuration.md's table (`make docs` writes it).

A process reads its settings once, in its __main__, with `Settings.from_env(os.environ)`, and
passes them (or the plain config objects derived from them) down; nothing below __main__ reads
the environment. A value that is empty or only whitespace is unset; defaults are validated
too (pydantic-settings' validate_default), so a bad one fails every start. A bad value raises
ConfigError with one line per bad variable naming it, what it must be and what it was, e.g.
`SAYIT_DIRECT_SLOTS must be >= 0; got -1`.
"""

from __future__ import annotations

import os
import re
import types
import typing
from collections.abc import Iterator, Mapping
from contextvars import ContextVar
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal, Self

from pydantic import (
    AfterValidator,
    BeforeValidator,
    Field,
    PlainSerializer,
    PlainValidator,
    ValidationError,
    model_validator,
)
from pydantic_core import ErrorDetails, PydanticCustomError
from pydantic_settings import (
    BaseSettings,
    EnvSettingsSource,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

from services.common.config import MIB, LogConfig, ServerConfig
from services.common.errors import ConfigError
from services.common.tls import ClientTLS, ServerTLS

PREFIX = "SAYIT_"
# The error type of the checks below; ctx["message"] follows the variable's name.
SETTING_ERROR = "sayit_setting"
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


# --- errors --------------------------------------------------------------------------------------

_LIMITS = {
    "greater_than_equal": ("ge", ">="),
    "greater_than": ("gt", ">"),
    "less_than_equal": ("le", "<="),
    "less_than": ("lt", "<"),
}
_KINDS = {
    "int_parsing": "an integer",
    "int_type": "an integer",
    "int_from_float": "an integer",
    "float_parsing": "a number",
    "float_type": "a number",
    "finite_number": "a finite number",
    "bool_parsing": "true or false (1/0, yes/no, on/off)",
}


def describe(cls: type[Settings], error: ValidationError, environ: Mapping[str, str]) -> str:
    """One line per bad variable: its name, what it must be, what it was."""
    given = {k.upper(): v.strip() for k, v in environ.items()}
    lines = dict.fromkeys(_problem(cls, detail, given) for detail in error.errors())
    return "\n".join(lines)


def _problem(cls: type[Settings], detail: ErrorDetails, given: Mapping[str, str]) -> str:
    kind, ctx = detail["type"], detail.get("ctx") or {}
    if not detail["loc"] or detail["loc"][0] not in cls.model_fields:
        # A check of several variables (model_validator): its message names them.
        return str(ctx.get("message", detail["msg"]))
    name = str(detail["loc"][0])
    var = cls.env_name(name)
    value = given.get(var, detail["input"])
    if kind == SETTING_ERROR:
        message = str(ctx["message"])
        text = f"{var}{'' if message.startswith(':') else ' '}{message}"
        return f"{text}; got {value!r}" if ctx.get("show_value", True) else text
    if kind in _LIMITS and len(detail["loc"]) == 1:
        key, op = _LIMITS[kind]
        return f"{var} must be {op} {ctx[key]}; got {_number(cls, name, detail['input'])}"
    if kind in _KINDS and len(detail["loc"]) == 1:
        return f"{var} must be {_KINDS[kind]}; got {value!r}"
    if kind == "literal_error":
        choices = ", ".join(map(str, _literal_choices(cls, name)))
        return f"{var} must be one of {choices}; got {value!r}"
    return f"{var}: {detail['msg']}; got {value!r}"


def _annotation_args(cls: type[Settings], name: str) -> Iterator[Any]:
    """A field's type, and each member of a union (`int | None`), without Annotated."""

    def bare(annotation: Any) -> Any:
        while typing.get_origin(annotation) is Annotated:
            annotation = typing.get_args(annotation)[0]
        return annotation

    annotation = bare(cls.model_fields[name].annotation)
    yield annotation
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        yield from map(bare, typing.get_args(annotation))


def _number(cls: type[Settings], name: str, raw: Any) -> int | float:
    if int in _annotation_args(cls, name):
        return int(raw)
    return float(raw)


def _literal_choices(cls: type[Settings], name: str) -> tuple[Any, ...]:
    for arg in _annotation_args(cls, name):
        if typing.get_origin(arg) is Literal:
            return typing.get_args(arg)
    return ()


# --- groups several deployables share ------------------------------------------------------------


class LogSettings(Settings):
    log_level: Annotated[LogLevel, Lowercase] = Field(
        "info", description="`debug`, `info`, `warning`, `error`"
    )
    log_format: Annotated[LogFormat, Lowercase] = Field(
        "auto", description="`json`, `console`, or `auto` (JSON unless on a terminal)"
    )

    @property
    def log(self) -> LogConfig:
        return LogConfig(level=self.log_level, format=self.log_format)


class ServerTLSSettings(Settings):
    """Serve TLS with a certificate and key, and mutual TLS with a client CA."""

    tls_cert_file: PemFile | None = Field(
        None,
        description="serve TLS with this certificate (PEM); needs `SAYIT_TLS_KEY_FILE`",
    )
    tls_key_file: PemFile | None = Field(
        None, description="the private key (PEM) of `SAYIT_TLS_CERT_FILE`"
    )
    tls_client_ca_file: PemFile | None = Field(
        None, description="require client certificates signed by this CA (mutual TLS)"
    )

    @model_validator(mode="after")
    def _server_pairs(self) -> Self:
        if (self.tls_cert_file is None) != (self.tls_key_file is None):
            raise invalid("SAYIT_TLS_CERT_FILE and SAYIT_TLS_KEY_FILE must be set together")
        if self.tls_client_ca_file is not None and self.tls_cert_file is None:
            raise invalid(
                "SAYIT_TLS_CLIENT_CA_FILE (mutual TLS) needs SAYIT_TLS_CERT_FILE and "
                "SAYIT_TLS_KEY_FILE"
            )
        return self

    @property
    def server_tls(self) -> ServerTLS | None:
        if self.tls_cert_file is None or self.tls_key_file is None:
            return None
        client_ca = self.tls_client_ca_file
        return ServerTLS(
            self.tls_cert_file.content,
            self.tls_key_file.content,
            None if client_ca is None else client_ca.content,
        )


class ClientTLSSettings(Settings):
    """Call other services over TLS, presenting a certificate when they require one."""

    tls_ca_file: PemFile | None = Field(
        None, description="call other services over TLS, verifying them with this CA (PEM)"
    )
    tls_client_cert_file: PemFile | None = Field(
        None,
        description="the certificate (PEM) presented to services that require mutual TLS; "
        "needs `SAYIT_TLS_CLIENT_KEY_FILE` and `SAYIT_TLS_CA_FILE`",
    )
    tls_client_key_file: PemFile | None = Field(
        None, description="the private key (PEM) of `SAYIT_TLS_CLIENT_CERT_FILE`"
    )

    @model_validator(mode="after")
    def _client_pairs(self) -> Self:
        if (self.tls_client_cert_file is None) != (self.tls_client_key_file is None):
            raise invalid(
                "SAYIT_TLS_CLIENT_CERT_FILE and SAYIT_TLS_CLIENT_KEY_FILE must be set together"
            )
        if self.tls_ca_file is None and self.tls_client_cert_file is not None:
            raise invalid(
                "SAYIT_TLS_CLIENT_CERT_FILE needs SAYIT_TLS_CA_FILE (the CA that signed the "
                "servers' certificates)"
            )
        return self

    @property
    def client_tls(self) -> ClientTLS | None:
        if self.tls_ca_file is None:
            return None
        cert, key = self.tls_client_cert_file, self.tls_client_key_file
        return ClientTLS(
            self.tls_ca_file.content,
            None if cert is None else cert.content,
            None if key is None else key.content,
        )


class RedisSettings(Settings):
    redis_url: str = Field(
        "redis://127.0.0.1:6379/0",
        description="Redis for jobs, events and RQ; for the gateway, the per-tenant limits",
    )
    redis_prefix: str = Field("sayit", description="prefix of SayIt's Redis keys")


class RequestSizeSettings(Settings):
    max_request_bytes: Int = Field(
        100 * MIB,
        ge=1024,
        le=2**31 - 1,
        description="largest audio a request may carry (gRPC messages may be 1 MiB larger)",
    )


class ShutdownSettings(Settings):
    shutdown_grace_seconds: float = Field(
        30.0, ge=0.0, description="drain time for in-flight calls after SIGTERM"
    )


class MaxAudioSettings(Settings):
    max_audio_seconds: float = Field(4 * 3600.0, ge=1.0, description="longest audio accepted")


class ModelNameSettings(Settings):
    model: str = Field("base", description="model size (`base` is bundled) or a model directory")


class JobTTLSettings(Settings):
    job_ttl_seconds: Int = Field(
        7 * 86400, ge=60, description="how long job records and event streams are kept"
    )


class ServerSettings(
    LogSettings, ServerTLSSettings, ClientTLSSettings, RequestSizeSettings, ShutdownSettings
):
    """What every gRPC server reads besides its own address."""

    def server_config(self, addr: str) -> ServerConfig:
        return ServerConfig(
            addr=addr,
            max_message_bytes=self.max_request_bytes,
            shutdown_grace_seconds=self.shutdown_grace_seconds,
            log=self.log,
            tls=self.server_tls,
            client_tls=self.client_tls,
        )


def doc(default: str) -> dict[str, Any]:
    """json_schema_extra of a field whose default the table describes in words."""
    return {"doc_default": default}
