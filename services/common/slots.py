"""A fixed number of places for concurrent work, and a first-come-first-served line of callers
waiting for one.

Used by a transcriber (its decoding slots, with a short line of calls allowed to wait) and by the
scheduler (its direct slots, where a short job waits a while and a job's weight is its audio
seconds, see services.scheduler.admission.direct_slots). A freed place goes to the first caller
in line, never to a newcomer; a caller that gives up (cancelled, or its wait ran out) leaves the
line without taking a place.
"""

from __future__ import annotations

import asyncio
from collections import deque
from dataclasses import dataclass, field


@dataclass
class _Waiter:
    weight: float
    handed: asyncio.Future[None] = field(
        default_factory=lambda: asyncio.get_running_loop().create_future()
    )


class Slots:
    def __init__(self, total: int, line: int | None = 0) -> None:
        """`total` places; `line`: how many callers may wait for one (None = any number)."""
        self.total = total
        self.line = line
        self.busy = 0
        self.busy_weight = 0.0  # the weights of the callers holding a place
        self._waiters: deque[_Waiter] = deque()

    @property
    def waiting(self) -> int:
        return sum(1 for w in self._waiters if not w.handed.done())

    @property
    def waiting_weight(self) -> float:
        return sum(w.weight for w in self._waiters if not w.handed.done())

    def try_acquire(self, weight: float = 1.0) -> bool:
        """Take a free place at once (never ahead of a caller already waiting)."""
        if self.busy >= self.total or self.waiting:
            return False
        self.busy += 1
        self.busy_weight += weight
        return True

    async def acquire(self, weight: float = 1.0, timeout: float | None = None) -> bool:  # noqa: ASYNC109
        """Take a place, waiting in line for one (at most `timeout` seconds) if the line has
        room. False: the line was full or the wait ran out."""
        if self.try_acquire(weight):
            return True
        if self.line is not None and self.waiting >= self.line:
            return False
        waiter = _Waiter(weight)
        self._waiters.append(waiter)
        try:
            await asyncio.wait({waiter.handed}, timeout=timeout)
        except asyncio.CancelledError:
            if waiter.handed.done() and not waiter.handed.cancelled():
                self.release(weight)  # handed a place in the same moment: pass it on
            waiter.handed.cancel()
            raise
        finally:
            self._forget_done()
        if waiter.handed.done() and not waiter.handed.cancelled():
            return True
        waiter.handed.cancel()  # the wait ran out
        self._forget_done()
        return False

    def release(self, weight: float = 1.0) -> None:
        """Hand the place to the first caller in line, or free it."""
        self.busy_weight = max(0.0, self.busy_weight - weight)
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.handed.done():
                waiter.handed.set_result(None)
                self.busy_weight += waiter.weight
                return
        self.busy = max(0, self.busy - 1)

    def _forget_done(self) -> None:
        self._waiters = deque(w for w in self._waiters if not w.handed.done())
