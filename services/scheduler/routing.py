"""Where a job runs: the pure routing policy (no I/O)."""

from __future__ import annotations

from dataclasses import dataclass

from services.scheduler import queue
from services.scheduler.records import DIRECT, QUEUED_ROUTE


@dataclass(frozen=True)
class Route:
    routing: str  # records.DIRECT or records.QUEUED_ROUTE
    queue: str  # the RQ queue when queued, else ""

    @property
    def direct(self) -> bool:
        return self.routing == DIRECT


def is_short(duration_seconds: float, sync_max_seconds: float) -> bool:
    return duration_seconds < sync_max_seconds


def choose(
    duration_seconds: float, *, queue_only: bool, sync_max_seconds: float, direct_slot_free: bool
) -> Route:
    """Short audio runs now on a direct transcriber, or, when every direct slot is busy, waits
    on the high-priority queue; long audio (and anything the caller asked to queue) goes to the
    default queue, short queued audio to the high one."""
    short = is_short(duration_seconds, sync_max_seconds)
    if short and not queue_only and direct_slot_free:
        return Route(DIRECT, "")
    return Route(QUEUED_ROUTE, queue.HIGH if short else queue.DEFAULT)
