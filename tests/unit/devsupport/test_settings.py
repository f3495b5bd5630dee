"""devsupport.settings: the SAYIT_* variables of `make up`, bench and the tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from devsupport.settings import BenchSettings, EvalClipsSettings, FuzzSettings, MeshSettings
from services.common.errors import ConfigError
from services.gateway.config import GatewaySettings


def test_make_up_turns_metrics_on_unless_a_variable_is_empty() -> None:
    mesh = MeshSettings.from_env({})
    assert mesh.metrics_addr("services.gateway") == "127.0.0.1:9150"
    assert mesh.metrics_addr("services.worker") == "127.0.0.1:9170"
    off = MeshSettings.from_env({"SAYIT_WORKER_METRICS_ADDR": ""})
    assert off.metrics_addr("services.worker") == ""
    # For the services themselves an empty value is unset, and unset is off.
    assert GatewaySettings.from_env({"SAYIT_AUTH": "off"}).gateway_metrics_addr == ""


def test_make_up_addresses_and_redis() -> None:
    mesh = MeshSettings.from_env({"SAYIT_SCHEDULER_ADDR": "127.0.0.1:6002"})
    assert mesh.listen_addr("services.scheduler") == "127.0.0.1:6002"
    assert mesh.listen_addr("services.transcriber") == "127.0.0.1:50053"
    assert (mesh.redis_url, mesh.mesh_redis_port, mesh.mesh_queue_transcribers) == (
        "redis://127.0.0.1:6379/0",
        6390,
        2,
    )
    with pytest.raises(ConfigError, match=r"^SAYIT_MESH_REDIS_PORT must be <= 65535; got 70000$"):
        MeshSettings.from_env({"SAYIT_MESH_REDIS_PORT": "70000"})


def test_bench_settings() -> None:
    bench = BenchSettings.from_env({"SAYIT_BENCH_THREADS": "4", "SAYIT_MODEL": "small"})
    assert (bench.bench_threads, bench.model_files.name) == (4, "small")
    assert BenchSettings.from_env({}).bench_threads is None  # every core
    with pytest.raises(ConfigError, match=r"^SAYIT_BENCH_THREADS must be an integer; got 'all'$"):
        BenchSettings.from_env({"SAYIT_BENCH_THREADS": "all"})


def test_test_settings() -> None:
    assert FuzzSettings.from_env({}).fuzz_examples == 40
    assert FuzzSettings.from_env({"SAYIT_FUZZ_EXAMPLES": "10000"}).fuzz_examples == 10_000
    assert EvalClipsSettings.from_env({}).eval_dir is None
    eval_dir = EvalClipsSettings.from_env({"SAYIT_EVAL_DIR": "~/eval"}).eval_dir
    assert eval_dir == Path.home() / "eval"
