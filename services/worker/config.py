"""Queue worker settings (SAYIT_* variables), read once in __main__."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from services.common.config import Env, LogConfig, load_log_config
from services.common.errors import ConfigError
from services.common.tls import ClientTLS, load_client_tls
from services.jobs import queue


@dataclass(frozen=True)
class WorkerConfig:
    redis_url: str
    transcriber_addr: str
    queues: tuple[str, ...]
    name: str | None
    heartbeat_seconds: int
    maintenance_seconds: int
    max_message_bytes: int
    key_prefix: str
    job_ttl_seconds: int
    transcriber_wait_seconds: float
    log: LogConfig
    # Prometheus /metrics listen address ("" = off) and where work horses leave their values.
    metrics_addr: str = ""
    metrics_dir: Path | None = None
    # TLS to the transcriber beside the worker (SAYIT_TLS_CA_FILE, SAYIT_TLS_CLIENT_CERT_FILE...).
    tls: ClientTLS | None = None


def load_config(environ: Mapping[str, str]) -> WorkerConfig:
    env = Env(environ)
    queues = tuple(
        q.strip() for q in env.get_str("SAYIT_WORKER_QUEUES", ",".join(queue.QUEUES)).split(",")
    )
    unknown = [q for q in queues if q not in queue.QUEUES]
    if unknown or not queues:
        raise ConfigError(
            f"SAYIT_WORKER_QUEUES must list queues among {', '.join(queue.QUEUES)}; got {unknown}"
        )
    return WorkerConfig(
        redis_url=env.get_str("SAYIT_REDIS_URL", "redis://127.0.0.1:6379/0"),
        transcriber_addr=env.get_addr("SAYIT_TRANSCRIBER_ADDR", "127.0.0.1:50053"),
        queues=queues,
        name=env.get_str("SAYIT_WORKER_NAME", "") or None,
        heartbeat_seconds=env.get_int("SAYIT_WORKER_HEARTBEAT_SECONDS", 5, min=1, max=300),
        maintenance_seconds=env.get_int("SAYIT_WORKER_MAINTENANCE_SECONDS", 10, min=1),
        max_message_bytes=env.get_int("SAYIT_MAX_REQUEST_BYTES", 100 * 1024 * 1024, min=1024),
        key_prefix=env.get_str("SAYIT_REDIS_PREFIX", "sayit"),
        job_ttl_seconds=env.get_int("SAYIT_JOB_TTL_SECONDS", 7 * 86400, min=60),
        transcriber_wait_seconds=env.get_float("SAYIT_WORKER_TRANSCRIBER_WAIT_SECONDS", 300.0),
        log=load_log_config(env),
        metrics_addr=env.get_optional_addr("SAYIT_WORKER_METRICS_ADDR"),
        metrics_dir=env.get_path("SAYIT_WORKER_METRICS_DIR", None),
        tls=load_client_tls(env),
    )
