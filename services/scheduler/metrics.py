"""The scheduler's Prometheus metrics: jobs submitted, queue depths, direct slots, live sessions
(job outcomes and retries are in services.jobs.metrics)."""

from __future__ import annotations

from collections.abc import Callable, Iterator

from prometheus_client import Counter, Gauge
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import REGISTRY, Collector

from services.common import logs
from services.common.slots import Slots
from services.scheduler.admission.direct_slots import DirectSlots

log = logs.get_logger("sayit.metrics")


JOBS_SUBMITTED = Counter(
    "sayit_jobs_submitted_total",
    "Jobs accepted by the scheduler, by routing (direct, queued) and queue.",
    ["routing", "queue"],
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
LIVE_SESSIONS_ACTIVE = Gauge(
    "sayit_live_sessions_active", "Live sessions (StreamingRecognize) running (this scheduler)."
)
LIVE_SESSIONS_TOTAL = Gauge(
    "sayit_live_sessions_total", "Live session places (this scheduler, SAYIT_STREAM_SESSIONS)."
)
LIVE_SESSIONS_REFUSED = Counter(
    "sayit_live_sessions_refused_total",
    "Live sessions refused RESOURCE_EXHAUSTED for want of a place, by who refused (scheduler, "
    "transcriber).",
    ["by"],
)


def track_live_sessions(places: Slots) -> None:
    LIVE_SESSIONS_ACTIVE.set_function(lambda: places.busy)
    LIVE_SESSIONS_TOTAL.set_function(lambda: places.total)


def session_refused(by: str) -> None:
    LIVE_SESSIONS_REFUSED.labels(by).inc()


def job_submitted(routing: str, queue: str) -> None:
    JOBS_SUBMITTED.labels(routing.lower(), queue or "none").inc()


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
