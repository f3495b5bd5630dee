"""Prometheus metrics shared by every service: RPC counts and latencies, and serving /metrics.

Metric names for RPCs follow the grpc-ecosystem convention (`grpc_server_handled_total`,
`grpc_server_handling_seconds`), so existing dashboards and alerts work unchanged. Each process
serves its own endpoint (`SAYIT_<SERVICE>_METRICS_ADDR`); Prometheus adds the job and instance.

The queue worker runs a work horse process per job, and whatever a horse counts in memory dies
with it. `enable_multiprocess` switches the worker to prometheus_client's multiprocess mode, where
values live in mmap'd files that outlive the horse and the worker's endpoint sums them; a horse
calls `join_multiprocess`.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from pathlib import Path

from prometheus_client import (
    REGISTRY,
    CollectorRegistry,
    Counter,
    Histogram,
    multiprocess,
    start_http_server,
    values,
)
from prometheus_client.registry import Collector

# From a health check (milliseconds) to a long stream (hours).
LATENCY_BUCKETS = (
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
    30.0,
    60.0,
    120.0,
    300.0,
    600.0,
    1800.0,
    3600.0,
)

UNARY, SERVER_STREAM = "unary", "server_stream"
CLIENT_STREAM, BIDI_STREAM = "client_stream", "bidi_stream"

RPC_STARTED = Counter(
    "grpc_server_started_total",
    "RPCs started on the server.",
    ["grpc_type", "grpc_service", "grpc_method"],
)
RPC_HANDLED = Counter(
    "grpc_server_handled_total",
    "RPCs completed on the server, by status code.",
    ["grpc_type", "grpc_service", "grpc_method", "grpc_code"],
)
RPC_SECONDS = Histogram(
    "grpc_server_handling_seconds",
    "Time from the start of an RPC until the server finished it (streams: the whole stream).",
    ["grpc_type", "grpc_service", "grpc_method"],
    buckets=LATENCY_BUCKETS,
)


def split_method(full_method: str) -> tuple[str, str]:
    """ "/sayit.speech.v1.SpeechService/Transcribe" -> ("sayit.speech.v1.SpeechService",
    "Transcribe")."""
    service, _, method = full_method.lstrip("/").rpartition("/")
    return service or "unknown", method or "unknown"


def rpc_started(kind: str, full_method: str) -> None:
    service, method = split_method(full_method)
    RPC_STARTED.labels(kind, service, method).inc()


def rpc_finished(kind: str, full_method: str, code: str, seconds: float) -> None:
    service, method = split_method(full_method)
    RPC_HANDLED.labels(kind, service, method, code).inc()
    RPC_SECONDS.labels(kind, service, method).observe(seconds)


def serve(addr: str, registry: Collector = REGISTRY) -> None:
    """Serve /metrics on `addr` (host:port) from a daemon thread. Raises RuntimeError naming the
    address when it cannot be bound, so a misconfigured port stops start-up."""
    host, _, port = addr.rpartition(":")
    try:
        start_http_server(int(port), addr=host.strip("[]") or "0.0.0.0", registry=registry)
    except OSError as error:
        raise RuntimeError(f"could not serve metrics on {addr}: {error}") from error


MULTIPROCESS_DIR_VARIABLE = "PROMETHEUS_MULTIPROC_DIR"


def enable_multiprocess(directory: Path, identity: Callable[[], str]) -> CollectorRegistry:
    """Keep this process's and its children's metric values in files under `directory` (wiped
    first; children find it in the environment), and return a registry that sums them.

    `identity` names the file set a process writes. The worker passes its own name for itself and
    one shared name for all of its work horses: horses run one at a time, so each continues the
    previous one's file instead of leaving one file per job behind (which would make every scrape
    read thousands of files after a day).

    Metrics a child increments must have labels: a labelled metric creates its value on first
    `.labels()`, after `join_multiprocess`, while an unlabelled one created its value at import.
    """
    if directory.exists():
        shutil.rmtree(directory)
    directory.mkdir(parents=True)
    # prometheus_client reads the directory from the environment when it opens value files.
    os.environ[MULTIPROCESS_DIR_VARIABLE] = str(directory)
    join_multiprocess(identity)
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry, path=str(directory))
    return registry


def join_multiprocess(identity: Callable[[], str]) -> None:
    """Write this process's metric values to the file set `identity` names, in the directory a
    parent gave with `enable_multiprocess`."""
    values.ValueClass = values.MultiProcessValue(identity)
