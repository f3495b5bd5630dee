"""The scheduler's and queue workers' Prometheus metrics: jobs, queues, retries, direct slots.

Some of these are incremented in RQ work horses (forked per job), where the worker runs
prometheus_client in multiprocess mode (see services.common.metrics.enable_multiprocess). Every
metric a horse touches therefore has labels, so its value is created after the switch.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

from prometheus_client import Counter, Gauge, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import REGISTRY, Collector

from sayit.common.v1 import event_pb2
from services.common import logs
from services.scheduler.direct_slots import DirectSlots

log = logs.get_logger("sayit.metrics")

WAIT_BUCKETS = (0.1, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0)
# Terminal event kind -> job outcome.
_OUTCOMES = {"completed": "succeeded", "failed": "failed", "cancelled": "cancelled"}

JOBS_SUBMITTED = Counter(
    "sayit_jobs_submitted_total",
    "Jobs accepted by the scheduler, by routing (direct, queued) and queue.",
    ["routing", "queue"],
)
JOBS_FINISHED = Counter(
    "sayit_jobs_finished_total",
    "Jobs that reached their end, by outcome (succeeded, failed, cancelled). Counted once per "
    "job by whichever process recorded the end (scheduler or worker): sum over both.",
    ["outcome"],
)
QUEUE_WAIT = Histogram(
    "sayit_queue_wait_seconds",
    "Time queued work waited from enqueue until a worker started it, by queue.",
    ["queue"],
    buckets=WAIT_BUCKETS,
)
CHUNK_RETRIES = Counter(
    "sayit_chunk_retries_total",
    "Queued pieces of work scheduled to run again, by reason (worker_died, "
    "transcriber_unavailable).",
    ["reason"],
)
DIRECT_SLOTS_BUSY = Gauge(
    "sayit_direct_slots_busy", "Direct transcription slots in use (this scheduler)."
)
DIRECT_SLOTS_TOTAL = Gauge(
    "sayit_direct_slots_total", "Direct transcription slots (this scheduler's share)."
)
DIRECT_SENT_AHEAD = Gauge(
    "sayit_direct_sent_ahead",
    "Short jobs sent to a direct transcriber ahead of a free slot, waiting there (this scheduler).",
)
DIRECT_WAITING = Gauge(
    "sayit_direct_waiting", "Short jobs waiting in this scheduler for a direct slot."
)


def job_submitted(routing: str, queue: str) -> None:
    JOBS_SUBMITTED.labels(routing.lower(), queue or "none").inc()


def event_recorded(event: event_pb2.JobEvent | None, sequence: int) -> None:
    """Count a job's end when its terminal event was actually appended (sequence > 0): the append
    script appends it once per job, however many processes try."""
    if event is None or sequence <= 0:
        return
    outcome = _OUTCOMES.get(str(event.WhichOneof("kind")))
    if outcome:
        JOBS_FINISHED.labels(outcome).inc()


def track_direct_slots(slots: DirectSlots) -> None:
    DIRECT_SLOTS_BUSY.set_function(lambda: slots.running)
    DIRECT_SENT_AHEAD.set_function(lambda: slots.sent_ahead)
    DIRECT_SLOTS_TOTAL.set_function(lambda: slots.total)
    DIRECT_WAITING.set_function(lambda: slots.waiting)


class QueueDepthCollector(Collector):
    """`sayit_queue_depth{queue}`, read from Redis at scrape time."""

    def __init__(self, depths: Callable[[], dict[str, int]]) -> None:
        self._depths = depths

    def describe(self) -> Iterator[GaugeMetricFamily]:
        # Registering must not call Redis: describe the family without reading it.
        yield GaugeMetricFamily("sayit_queue_depth", "", labels=["queue"])

    def collect(self) -> Iterator[GaugeMetricFamily]:
        family = GaugeMetricFamily(
            "sayit_queue_depth", "Pieces of work waiting in each RQ queue.", labels=["queue"]
        )
        try:
            depths = self._depths()
        except Exception as error:  # Redis down: the scrape still answers, without this metric
            log.warning("queue_depth_unavailable", error=str(error))
            return
        for queue, depth in sorted(depths.items()):
            family.add_metric([queue], depth)
        yield family


def track_queue_depths(depths: Callable[[], dict[str, int]]) -> None:
    REGISTRY.register(QueueDepthCollector(depths))
