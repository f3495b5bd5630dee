"""The polling fallback's schedule, for callers that cannot hold a stream open."""

from __future__ import annotations

FAST_SECONDS = 3.0  # every 3 s while the job is young...
SLOW_SECONDS = 5.0  # ...then every 5 s
FAST_PERIOD_SECONDS = 30.0


def poll_interval(elapsed_seconds: float) -> float:
    """Seconds to wait before the next GetJob, `elapsed_seconds` after polling began."""
    return FAST_SECONDS if elapsed_seconds < FAST_PERIOD_SECONDS else SLOW_SECONDS
