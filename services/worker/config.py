"""Queue worker settings (SAYIT_* variables), read once in __main__, and the config derived from
them."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from pydantic import Field, field_validator

from services.common.config import LogConfig
from services.common.redis_client import DEFAULT_POOL, RedisPool
from services.common.settings import (
    CommaList,
    ExpandedPath,
    HostPort,
    Int,
    OptionalHostPort,
    doc,
    invalid,
)
from services.common.shared_settings import (
    ClientTLSSettings,
    JobTTLSettings,
    LogSettings,
    RedisSettings,
    RequestSizeSettings,
)
from services.common.tls import ClientTLS
from services.jobs import queue


@dataclass(frozen=True)
class WorkerConfig:
    redis_url: str = field(repr=False)  # holds the Redis password
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
    redis_pool: RedisPool = DEFAULT_POOL


class WorkerSettings(
    LogSettings, ClientTLSSettings, RedisSettings, RequestSizeSettings, JobTTLSettings
):
    used_by = "worker"

    transcriber_addr: HostPort = Field(
        "127.0.0.1:50053", description="for a worker, the transcriber beside it"
    )
    worker_queues: CommaList = Field(
        queue.QUEUES, description="queues, highest priority first (comma-separated)"
    )
    worker_name: str | None = Field(
        None,
        description="prefix of the worker's RQ name: it registers as `<name>.<6 hex>`, a new "
        "suffix at every start, so a restarted worker never waits for its dead predecessor's "
        "registration to expire",
        json_schema_extra=doc("random (RQ's)"),
    )
    worker_heartbeat_seconds: Int = Field(
        5,
        ge=1,
        le=300,
        description="heartbeat interval; a job is abandoned after interval + 10 s of silence",
    )
    worker_maintenance_seconds: Int = Field(
        10, ge=1, description="RQ registry maintenance interval"
    )
    worker_transcriber_wait_seconds: float = Field(
        300.0, description="how long a worker waits at start for its transcriber"
    )
    worker_metrics_addr: OptionalHostPort = Field(
        "",
        description="Prometheus `/metrics` listen address of a queue worker (sums its work "
        "horses); empty = off",
    )
    worker_metrics_dir: ExpandedPath | None = Field(
        None,
        description="where work horses keep metric values (wiped at start)",
        json_schema_extra=doc("`$TMPDIR/sayit-worker-<pid>`"),
    )

    @field_validator("worker_queues")
    @classmethod
    def _known_queues(cls, queues: tuple[str, ...]) -> tuple[str, ...]:
        if not queues or any(q not in queue.QUEUES for q in queues):
            raise invalid(f"must list queues among {', '.join(queue.QUEUES)}")
        return queues

    def config(self) -> WorkerConfig:
        return WorkerConfig(
            redis_url=self.redis_url,
            transcriber_addr=self.transcriber_addr,
            queues=self.worker_queues,
            name=self.worker_name,
            heartbeat_seconds=self.worker_heartbeat_seconds,
            maintenance_seconds=self.worker_maintenance_seconds,
            max_message_bytes=self.max_request_bytes,
            key_prefix=self.redis_prefix,
            job_ttl_seconds=self.job_ttl_seconds,
            transcriber_wait_seconds=self.worker_transcriber_wait_seconds,
            log=self.log,
            metrics_addr=self.worker_metrics_addr,
            metrics_dir=self.worker_metrics_dir,
            tls=self.client_tls,
            redis_pool=self.redis_pool,
        )


def load_config(environ: Mapping[str, str]) -> WorkerConfig:
    return WorkerSettings.from_env(environ).config()
