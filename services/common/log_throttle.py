"""At most one log line per interval for an event that can repeat on every call.

When a dependency fails, every request meets the same failure: one line per request would flood
the log (and the disk) exactly when an operator reads it. The line that is written says how many
were left out since the last one.
"""

from __future__ import annotations

import time
from collections.abc import Callable


class LogThrottle:
    def __init__(
        self, interval_seconds: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._interval = interval_seconds
        self._clock = clock
        self._next = float("-inf")
        self._skipped = 0

    def due(self) -> int | None:
        """None when this occurrence is not to be logged; else how many were skipped since the
        last one that was."""
        now = self._clock()
        if now < self._next:
            self._skipped += 1
            return None
        skipped, self._skipped = self._skipped, 0
        self._next = now + self._interval
        return skipped
