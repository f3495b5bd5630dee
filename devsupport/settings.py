"""The SAYIT_* variables of the dev tools: `make up`, `make run`, `make load`, bench and tests.

Like the services' (services/common/settings.py), each is a typed, validated field of a frozen
settings class, read once where the tool starts, and a row of docs/configuration.md's table.
Where a tool reads a variable with a service's meaning, the field reuses that description.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field

from services.cli.config import CliSettings
from services.common.hugepages import HugePagesSettings
from services.common.settings import (
    ExpandedPath,
    HostPort,
    Int,
    KeepEmpty,
    Lowercase,
    OptionalHostPort,
    Settings,
    doc,
)
from services.common.shared_settings import ClientTLSSettings, RedisSettings, ShutdownSettings
from services.gateway.config import GatewaySettings
from services.http_edge.config import HttpEdgeSettings
from services.scheduler.config import SchedulerSettings
from services.transcriber.config import ModelSettings, TranscriberSettings
from services.worker.config import WorkerSettings


def same_as(settings: type[Settings], name: str, default: Any) -> Any:
    """A field with the meaning (description) of a service's field, and its own default."""
    info = settings.model_fields[name]
    return Field(default, description=info.description, repr=info.repr)


# An endpoint `make up` turns on by default: unset = its default, empty = off.
MeshMetricsAddr = Annotated[OptionalHostPort, KeepEmpty]


class MeshSettings(ClientTLSSettings, ShutdownSettings):
    """`make up` / `make down` / `make status` (scripts/mesh.py)."""

    used_by = "`make up`"

    gateway_addr: HostPort = same_as(GatewaySettings, "gateway_addr", "127.0.0.1:50051")
    scheduler_addr: HostPort = same_as(SchedulerSettings, "scheduler_addr", "127.0.0.1:50052")
    transcriber_addr: HostPort = same_as(TranscriberSettings, "transcriber_addr", "127.0.0.1:50053")
    http_addr: HostPort = same_as(HttpEdgeSettings, "http_addr", "127.0.0.1:8080")
    gateway_metrics_addr: MeshMetricsAddr = same_as(
        GatewaySettings, "gateway_metrics_addr", "127.0.0.1:9150"
    )
    scheduler_metrics_addr: MeshMetricsAddr = same_as(
        SchedulerSettings, "scheduler_metrics_addr", "127.0.0.1:9151"
    )
    transcriber_metrics_addr: MeshMetricsAddr = same_as(
        TranscriberSettings, "transcriber_metrics_addr", "127.0.0.1:9152"
    )
    worker_metrics_addr: MeshMetricsAddr = same_as(
        WorkerSettings, "worker_metrics_addr", "127.0.0.1:9170"
    )
    http_metrics_addr: MeshMetricsAddr = same_as(
        HttpEdgeSettings, "http_metrics_addr", "127.0.0.1:9160"
    )
    redis_url: str = same_as(RedisSettings, "redis_url", "redis://127.0.0.1:6379/0")
    redis_prefix: str = same_as(RedisSettings, "redis_prefix", "sayit")
    mesh_redis_port: Int = Field(
        6390,
        ge=1,
        le=65535,
        description="port of `make up`'s own Redis when the port of `SAYIT_REDIS_URL` is taken "
        "or not on this machine",
    )
    mesh_redis_maxmemory_mb: Int = Field(
        1024,
        ge=16,
        description="`maxmemory` (MiB) of `make up`'s own Redis, which runs with "
        "`maxmemory-policy noeviction`: when full it refuses new work instead of dying",
    )
    mesh_queue_transcribers: Int = Field(
        2, ge=0, description="transcriber + worker pairs of `make up`"
    )
    # The gateway requires API keys: unless one of these says otherwise, `make up` gives it the
    # dev tenant's keys file (.run/api-keys.toml, the key in .run/dev-api-key).
    api_keys_file: ExpandedPath | None = same_as(GatewaySettings, "api_keys_file", None)
    auth: Annotated[Literal["on", "off"], Lowercase] = same_as(GatewaySettings, "auth", "on")

    def metrics_addr(self, module: str) -> str:
        """The Prometheus endpoint of a service module's first process ("" = off)."""
        return str(getattr(self, f"{module.rsplit('.', 1)[-1]}_metrics_addr"))

    def listen_addr(self, module: str) -> str:
        return str(getattr(self, f"{module.rsplit('.', 1)[-1]}_addr"))


class DemoSettings(Settings):
    """`make run` (scripts/demo.py)."""

    used_by = "`make run`"

    gateway_addr: HostPort = same_as(GatewaySettings, "gateway_addr", "127.0.0.1:50051")
    api_key: str | None = same_as(CliSettings, "api_key", None)


class CallerSettings(ClientTLSSettings):
    """A dev tool calling a running gateway: TLS and an API key, as the `sayit` CLI."""

    api_key: str | None = same_as(CliSettings, "api_key", None)


class LoadSettings(CallerSettings):
    """`make load` (bench/load.py)."""

    used_by = "`make load`"

    gateway_addr: HostPort = same_as(GatewaySettings, "gateway_addr", "127.0.0.1:50051")


class EvalGatewaySettings(CallerSettings):
    """`make eval --addr HOST:PORT` (bench/eval_backends.GatewayTranscriber)."""

    used_by = "`make eval --addr`"


class BenchSettings(ModelSettings, HugePagesSettings):
    """bench's raw engine: the model the services would load, on the same huge pages."""

    used_by = "bench"

    bench_threads: Int | None = Field(
        None,
        ge=1,
        description="CPU threads of one decode, for the raw engine and the bench meshes "
        "(`make bench --threads`)",
        json_schema_extra=doc("every core"),
    )
    bench_stream_long_minutes: float | None = Field(
        None,
        gt=0,
        le=24 * 60,
        description="length of the `streaming` section's long live session (memory and "
        "latency, first vs last 5 minutes)",
        json_schema_extra=doc("`30` (`--quick`: 20 s)"),
    )


class EvalClipsSettings(Settings):
    """Where devsupport.evalset finds the evaluation clips."""

    used_by = "tests, bench, `make run`"

    eval_dir: ExpandedPath | None = Field(
        None,
        description="the evaluation clips (a folder holding `manifest.tsv`)",
        json_schema_extra=doc("`../shared/eval`, else `/work/shared/eval`"),
    )


class FuzzSettings(Settings):
    """tests/e2e/test_fuzz.py."""

    used_by = "tests"

    fuzz_examples: Int = Field(
        40,
        ge=1,
        description="generated requests of the fuzz test",
        json_schema_extra=doc("`40` (`make fuzz`: 10 000)"),
    )
