"""Gateway settings (SAYIT_* variables), read once in __main__, and the config derived from
them."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Literal, Self

from pydantic import Field, model_validator

from services.common.config import ServerConfig
from services.common.redis_client import DEFAULT_POOL, RedisPool
from services.common.settings import (
    ExpandedPath,
    Flag,
    HostPort,
    Int,
    Lowercase,
    OptionalHostPort,
    invalid,
)
from services.common.shared_settings import (
    MaxAudioSettings,
    ModelNameSettings,
    RedisSettings,
    ServerSettings,
)
from services.gateway.quotas import Limits

DEFAULT_ADDR = "127.0.0.1:50051"


@dataclass(frozen=True)
class GatewayConfig:
    server: ServerConfig
    scheduler_addr: str
    # The model this deployment serves; config.model must be empty or this.
    model: str
    # Deadlines for calls to the scheduler when the caller set none.
    unary_timeout_seconds: float
    wait_timeout_seconds: float
    stream_timeout_seconds: float
    # Longest audio accepted (the scheduler checks it too).
    max_audio_seconds: float
    # API keys and tenants; None only with SAYIT_AUTH=off (every caller is the default tenant).
    api_keys_file: Path | None
    # Default per-tenant limits (a tenant's own limits come from the keys file); 0 = unlimited.
    limits: Limits
    # Redis for the limits, shared by every gateway replica.
    redis_url: str = field(repr=False)  # holds the Redis password
    key_prefix: str
    # With the limits' Redis failing: let requests through (True) or refuse them (False).
    quota_fail_open: bool = False
    # Prometheus /metrics listen address; "" = off.
    metrics_addr: str = ""
    # Streams one tenant keeps open at once on this gateway (services.common.call_limits).
    max_streams_per_tenant: int = 0
    redis_pool: RedisPool = DEFAULT_POOL
    # Wall time the probe may spend measuring a file that declares no length.
    probe_budget_seconds: float = 10.0
    # UploadJob: the largest file taken, and where it is spooled while it arrives ("" = the
    # system's temporary directory).
    max_upload_bytes: int = 2 * 1024**3
    upload_dir: str = ""
    # How often the keys file is checked for changes (it is also reloaded on SIGHUP).
    api_keys_reload_seconds: float = 2.0
    # A live session that gets no audio for this long ends as if half-closed.
    stream_idle_seconds: float = 10.0


class GatewaySettings(ServerSettings, RedisSettings, MaxAudioSettings, ModelNameSettings):
    used_by = "gateway"

    gateway_addr: HostPort = Field(DEFAULT_ADDR, description="for the gateway, its listen address")
    gateway_metrics_addr: OptionalHostPort = Field(
        "", description="Prometheus `/metrics` listen address of the gateway; empty = off"
    )
    scheduler_addr: str = Field(
        "127.0.0.1:50052", description="for the gateway, the scheduler it calls"
    )
    gateway_unary_timeout_seconds: float = Field(
        60.0,
        ge=1,
        description="deadline of unary calls to the scheduler when the caller set none",
    )
    gateway_wait_timeout_seconds: float = Field(
        600.0, ge=1, description="same, for `Transcribe` of short audio"
    )
    gateway_stream_timeout_seconds: float = Field(
        6 * 3600.0, ge=1, description="same, for event streams"
    )
    api_keys_file: ExpandedPath | None = Field(
        None,
        description="the API keys file (TOML, sha256 of each key, tenant, roles, per-tenant "
        "limits), reloaded when it changes and on SIGHUP; required unless `SAYIT_AUTH=off`",
    )
    auth: Annotated[Literal["on", "off"], Lowercase] = Field(
        "on",
        description="`off` lets every caller in as the `default` tenant with every right, "
        "without a key (development only; logged at start, and `GetInfo` says so); `on` "
        "needs `SAYIT_API_KEYS_FILE`",
    )
    api_keys_reload_seconds: float = Field(
        2.0,
        gt=0.0,
        le=3600.0,
        description="how often the gateway checks `SAYIT_API_KEYS_FILE` for changes; a file "
        "that does not load is refused (logged) and the keys before it stay in force",
    )
    tenant_requests_per_second: float = Field(
        50.0,
        ge=0.0,
        description="default request rate per tenant (token bucket refill); 0 = unlimited",
    )
    probe_budget_seconds: float = Field(
        10.0,
        gt=0.0,
        description="wall time the gateway may spend measuring audio whose file declares no "
        "length (a packet pass, decoding only where packets carry no duration); such a file "
        "that needs longer is refused with INVALID_ARGUMENT",
    )
    tenant_request_burst: Int = Field(100, ge=1, description="default bucket size per tenant")
    tenant_audio_seconds_per_day: float = Field(
        0.0,
        ge=0.0,
        description="default audio seconds per tenant per UTC day; 0 = unlimited",
    )
    quota_fail_open: Flag = Field(
        False,
        description="when the gateway's quota store (Redis) fails, let requests through without "
        "checking their rate and daily audio (logged, and counted in "
        '`sayit_gateway_quota_store_errors_total{outcome="let_through"}`); false = refuse '
        "them with UNAVAILABLE and RetryInfo",
    )
    max_streams_per_tenant: Int = Field(
        100,
        ge=1,
        le=1_000_000,
        description="streaming calls one tenant keeps open at once on one gateway; beyond, a "
        "new one is refused RESOURCE_EXHAUSTED (other tenants are not affected)",
    )
    stream_idle_seconds: float = Field(
        10.0,
        gt=0.0,
        le=3600.0,
        description="a live session (`StreamingRecognize`) that gets no audio for this long "
        "ends as if the caller had half-closed it: its last utterance is flushed and the call "
        "ends OK",
    )

    max_upload_bytes: Int = Field(
        2 * 1024**3,
        ge=1,
        description="the largest file `UploadJob` takes (bytes); it is spooled to disk, never "
        "held in memory whole",
    )
    upload_dir: str = Field(
        "",
        description="directory where the gateway spools `UploadJob` files while they arrive "
        "(unnamed files, gone when the call ends); empty = the system's temporary directory",
    )

    @model_validator(mode="after")
    def _keys_or_auth_off(self) -> Self:
        # Keys are on by default: a gateway without them must be asked for explicitly.
        if self.auth == "on" and self.api_keys_file is None:
            raise invalid(
                "SAYIT_API_KEYS_FILE is not set and the gateway requires API keys: point it at "
                "a keys file (python -m services.gateway.keys new --tenant NAME makes an entry), "
                "or set SAYIT_AUTH=off to let every caller in without a key (development only)"
            )
        if self.auth == "off" and self.api_keys_file is not None:
            raise invalid(
                "SAYIT_AUTH=off and SAYIT_API_KEYS_FILE are both set: unset one (keys are "
                "either required or off)"
            )
        return self

    def config(self) -> GatewayConfig:
        return GatewayConfig(
            server=self.server_config(self.gateway_addr),
            scheduler_addr=self.scheduler_addr,
            model=self.model,
            unary_timeout_seconds=self.gateway_unary_timeout_seconds,
            wait_timeout_seconds=self.gateway_wait_timeout_seconds,
            stream_timeout_seconds=self.gateway_stream_timeout_seconds,
            metrics_addr=self.gateway_metrics_addr,
            probe_budget_seconds=self.probe_budget_seconds,
            max_audio_seconds=self.max_audio_seconds,
            api_keys_file=self.api_keys_file,
            api_keys_reload_seconds=self.api_keys_reload_seconds,
            limits=Limits(
                requests_per_second=self.tenant_requests_per_second,
                request_burst=self.tenant_request_burst,
                audio_seconds_per_day=self.tenant_audio_seconds_per_day,
            ),
            redis_url=self.redis_url,
            key_prefix=self.redis_prefix,
            quota_fail_open=self.quota_fail_open,
            max_streams_per_tenant=self.max_streams_per_tenant,
            redis_pool=self.redis_pool,
            max_upload_bytes=self.max_upload_bytes,
            upload_dir=self.upload_dir,
            stream_idle_seconds=self.stream_idle_seconds,
        )


def load_config(environ: Mapping[str, str]) -> GatewayConfig:
    return GatewaySettings.from_env(environ).config()
