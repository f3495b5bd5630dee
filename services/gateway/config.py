"""Gateway settings (SAYIT_* variables), read once in __main__."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from services.common.config import Env, ServerConfig, load_server_config
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
    # API keys and tenants; None = authentication off (every caller is the default tenant).
    api_keys_file: Path | None
    # Default per-tenant limits (a tenant's own limits come from the keys file); 0 = unlimited.
    limits: Limits
    # Redis for the limits, shared by every gateway replica.
    redis_url: str
    key_prefix: str
    # Prometheus /metrics listen address; "" = off.
    metrics_addr: str = ""


def load_config(environ: Mapping[str, str]) -> GatewayConfig:
    env = Env(environ)
    return GatewayConfig(
        server=load_server_config(env, "SAYIT_GATEWAY_ADDR", DEFAULT_ADDR),
        scheduler_addr=env.get_str("SAYIT_SCHEDULER_ADDR", "127.0.0.1:50052"),
        model=env.get_str("SAYIT_MODEL", "base"),
        unary_timeout_seconds=env.get_float("SAYIT_GATEWAY_UNARY_TIMEOUT_SECONDS", 60.0, min=1),
        wait_timeout_seconds=env.get_float("SAYIT_GATEWAY_WAIT_TIMEOUT_SECONDS", 600.0, min=1),
        stream_timeout_seconds=env.get_float(
            "SAYIT_GATEWAY_STREAM_TIMEOUT_SECONDS", 6 * 3600.0, min=1
        ),
        metrics_addr=env.get_optional_addr("SAYIT_GATEWAY_METRICS_ADDR"),
        max_audio_seconds=env.get_float("SAYIT_MAX_AUDIO_SECONDS", 4 * 3600.0, min=1.0),
        api_keys_file=env.get_path("SAYIT_API_KEYS_FILE", None),
        limits=Limits(
            requests_per_second=env.get_float("SAYIT_TENANT_REQUESTS_PER_SECOND", 50.0, min=0.0),
            request_burst=env.get_int("SAYIT_TENANT_REQUEST_BURST", 100, min=1),
            audio_seconds_per_day=env.get_float("SAYIT_TENANT_AUDIO_SECONDS_PER_DAY", 0.0, min=0.0),
        ),
        redis_url=env.get_str("SAYIT_REDIS_URL", "redis://127.0.0.1:6379/0"),
        key_prefix=env.get_str("SAYIT_REDIS_PREFIX", "sayit"),
    )
