"""The queue worker's own Prometheus metrics."""

from __future__ import annotations

from prometheus_client import Histogram

WAIT_BUCKETS = (0.1, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0)

QUEUE_WAIT = Histogram(
    "sayit_queue_wait_seconds",
    "Time queued work waited from enqueue until a worker started it, by queue.",
    ["queue"],
    buckets=WAIT_BUCKETS,
)
