"""Gateway settings (SAYIT_* variables), read once in __main__."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from services.common.config import Env, ServerConfig, load_server_config

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
    )
