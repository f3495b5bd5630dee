"""The settings groups several deployables share: logging, TLS, Redis, request and audio limits,
the model's name, job lifetime, and what every gRPC server reads besides its address."""

from __future__ import annotations

from dataclasses import replace
from typing import Annotated, Any, Self

from pydantic import BeforeValidator, Field, model_validator
from pydantic_settings import NoDecode

from services.common.config import MIB, LogConfig, ServerConfig
from services.common.pki import SERVICES
from services.common.redis_client import RedisPool
from services.common.settings import (
    Flag,
    Int,
    LogFormat,
    LogLevel,
    Lowercase,
    PemFile,
    Settings,
    doc,
    invalid,
)
from services.common.tls import ClientTLS, ServerTLS
from services.common.tls_files import TLSFiles


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
            TLSFiles(
                self.tls_cert_file.path,
                self.tls_key_file.path,
                None if client_ca is None else client_ca.path,
            ),
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
            TLSFiles(
                None if cert is None else cert.path,
                None if key is None else key.path,
                self.tls_ca_file.path,
            ),
        )


class RedisSettings(Settings):
    redis_url: str = Field(
        "redis://127.0.0.1:6379/0",
        description="Redis for jobs, events and RQ; for the gateway, the per-tenant limits "
        "(`redis://<user>:<password>@host:port/0` with the service's ACL user)",
        repr=False,  # holds the password
    )
    redis_prefix: str = Field("sayit", description="prefix of SayIt's Redis keys")
    redis_max_connections: Int = Field(
        32,
        ge=2,
        le=10_000,
        description="connections each Redis client of a process may hold (its pool); open "
        "event streams share one, so this does not grow with them",
    )
    redis_pool_wait_seconds: float = Field(
        2.0,
        ge=0.0,
        le=60.0,
        description="how long a Redis command waits for a free pooled connection before the "
        'call fails UNAVAILABLE ("the job store is busy")',
    )

    @property
    def redis_pool(self) -> RedisPool:
        return RedisPool(self.redis_max_connections, self.redis_pool_wait_seconds)


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


class CallCapSettings(Settings):
    max_concurrent_rpcs: Int = Field(
        2000,
        ge=1,
        le=1_000_000,
        description="calls one server runs at once (streams included); beyond, a call is "
        "refused RESOURCE_EXHAUSTED with a retry hint",
    )
    max_open_streams: Int = Field(
        1000,
        ge=1,
        le=1_000_000,
        description="streaming calls (WatchJob, TranscribeWithProgress, StreamingRecognize) one "
        "server keeps open at once; beyond, a new one is refused RESOURCE_EXHAUSTED",
    )


class ServerSettings(
    LogSettings,
    ServerTLSSettings,
    ClientTLSSettings,
    RequestSizeSettings,
    ShutdownSettings,
    CallCapSettings,
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
            max_concurrent_rpcs=self.max_concurrent_rpcs,
            max_open_streams=self.max_open_streams,
        )


def _peer_names(value: Any) -> Any:
    if not isinstance(value, str):
        return value
    names = tuple(dict.fromkeys(n.strip().lower() for n in value.split(",") if n.strip()))
    unknown = [name for name in names if name not in SERVICES]
    if unknown:
        raise invalid(f"names services from {', '.join(SERVICES)}; unknown: {', '.join(unknown)}")
    if not names:
        raise invalid("must name at least one service")
    return names


PeerNames = Annotated[tuple[str, ...], NoDecode, BeforeValidator(_peer_names)]
ALLOWED_PEERS = (
    "the services (certificate identities `spiffe://sayit/<service>`) allowed to call this "
    "server's RPCs, comma-separated; health and reflection are open to any certificate of the CA"
)


class InternalServerSettings(ServerSettings):
    """A server only other SayIt services call (scheduler, transcriber): mutual TLS and a check
    of the calling service's identity, on unless turned off explicitly."""

    internal_tls: Flag = Field(
        True,
        description="`on`: refuse to start without mutual TLS (`SAYIT_TLS_CERT_FILE`, "
        "`SAYIT_TLS_KEY_FILE`, `SAYIT_TLS_CLIENT_CA_FILE`; `python -m services.common.pki DIR` "
        "makes them) and check every caller's service identity; `off`: plaintext, any caller "
        "(a warning at start)",
        json_schema_extra=doc("`on`"),
    )
    # Subclasses set their own default (who calls them).
    tls_allowed_peers: PeerNames = Field(("gateway",), description=ALLOWED_PEERS)

    @model_validator(mode="after")
    def _mutual_tls_required(self) -> Self:
        if self.internal_tls and (self.tls_cert_file is None or self.tls_client_ca_file is None):
            raise invalid(
                "SAYIT_INTERNAL_TLS is on (the default): set SAYIT_TLS_CERT_FILE, "
                "SAYIT_TLS_KEY_FILE and SAYIT_TLS_CLIENT_CA_FILE (mutual TLS; `python -m "
                "services.common.pki DIR` makes a CA and certificates), or set "
                "SAYIT_INTERNAL_TLS=off to accept any caller in plaintext"
            )
        return self

    def server_config(self, addr: str) -> ServerConfig:
        config = super().server_config(addr)
        if not self.internal_tls:
            return replace(config, internal_tls_off=True)
        return replace(config, allowed_peers=frozenset(self.tls_allowed_peers))
