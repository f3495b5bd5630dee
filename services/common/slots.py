"""A fixed number of concurrent units of work, and a short first-come-first-served line of
callers allowed to wait for one."""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque


class Slots:
    def __init__(self, total: int, line: int = 0) -> None:
        self.total = total
        self.line = line  # callers that may wait for a slot; more are refused
        self.busy = 0
        self._waiters: deque[asyncio.Future[None]] = deque()

    @property
    def waiting(self) -> int:
        return sum(1 for waiter in self._waiters if not waiter.done())

    def try_acquire(self) -> bool:
        """Take a free slot at once (never ahead of a caller already waiting)."""
        if self.busy >= self.total or self.waiting:
            return False
        self.busy += 1
        return True

    async def acquire(self) -> bool:
        """Take a slot, waiting in line for one if the line has room. False: refused."""
        if self.try_acquire():
            return True
        if self.waiting >= self.line:
            return False
        handed: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append(handed)
        try:
            await handed
        except asyncio.CancelledError:
            if handed.done() and not handed.cancelled():
                self.release()  # handed a slot in the same moment: pass it on
            handed.cancel()
            with contextlib.suppress(ValueError):
                self._waiters.remove(handed)
            raise
        return True

    def release(self) -> None:
        """Hand the slot to the first caller in line, or free it."""
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return
        self.busy = max(0, self.busy - 1)
