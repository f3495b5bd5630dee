"""Where a job runs: the pure routing policy (no I/O)."""

from __future__ import annotations

from dataclasses import dataclass

from services.jobs import queue
from services.jobs.schema import DIRECT, QUEUED_ROUTE


@dataclass(frozen=True)
class Route:
    routing: str  # schema.DIRECT or schema.QUEUED_ROUTE
    queue: str  # the RQ queue when queued, else ""
    waits: bool = False  # a direct job that waits in this scheduler for a slot to free
    reserved: bool = False  # a direct job that took a free slot on admission

    @property
    def direct(self) -> bool:
        return self.routing == DIRECT


def is_short(duration_seconds: float, sync_max_seconds: float) -> bool:
    return duration_seconds < sync_max_seconds


def choose(
    duration_seconds: float,
    *,
    queue_only: bool,
    sync_max_seconds: float,
    direct_slot_free: bool,
    direct_wait_short: bool = False,
) -> Route:
    """Short audio runs now on a direct transcriber; when every direct slot is busy it waits for
    one if the wait is expected to be short, else on the high-priority queue. Long audio (and
    anything the caller asked to queue) goes to the default queue, short queued audio to the
    high one."""
    short = is_short(duration_seconds, sync_max_seconds)
    if short and not queue_only and direct_slot_free:
        return Route(DIRECT, "", reserved=True)
    if short and not queue_only and direct_wait_short:
        return Route(DIRECT, "", waits=True)
    return Route(QUEUED_ROUTE, queue.HIGH if short else queue.DEFAULT)
