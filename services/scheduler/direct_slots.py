"""The scheduler's direct transcription slots, with a first-come-first-served line of short jobs
waiting for one.

Spilling every short job that finds the slots busy onto the high-priority queue left the direct
transcribers idle while one queue worker worked through the overflow in series (8 callers on 2
slots: 0.6 of the engine's throughput). A job now waits for a direct slot while the expected wait
is short (`max_wait_seconds`), and goes to the queue only when it is not, or when its wait runs
out. The expected wait comes from the audio seconds ahead of it and the real-time factor the
direct slots have shown (a moving average, `default_rtf` until the first job finishes).

Besides the slots, `ahead` more jobs may be sent to the transcribers, where they wait, audio
decoded, for a slot to free: the slot then starts its next job at once instead of idling while
the scheduler records the last one, hands the slot on and sends the next job's audio (3% of a
busy slot's time with short clips).
"""

from __future__ import annotations

import asyncio
from collections import deque
from dataclasses import dataclass, field

_RTF_WEIGHT = 0.2  # of each finished job in the moving average


@dataclass
class _Waiter:
    seconds: float
    handed: asyncio.Future[None] = field(
        default_factory=lambda: asyncio.get_running_loop().create_future()
    )


class DirectSlots:
    def __init__(
        self, total: int, *, max_wait_seconds: float, default_rtf: float, ahead: int = 0
    ) -> None:
        self.total = total
        self.ahead = ahead if total else 0
        self.busy = 0  # jobs at the transcribers: decoding, or sent ahead and waiting there
        self.max_wait_seconds = max_wait_seconds
        self.rtf = default_rtf
        self._running_seconds = 0.0  # audio seconds of the jobs at the transcribers
        self._line: deque[_Waiter] = deque()

    @property
    def running(self) -> int:
        return min(self.busy, self.total)

    @property
    def sent_ahead(self) -> int:
        return max(0, self.busy - self.total)

    @property
    def waiting(self) -> int:
        return sum(1 for w in self._line if not w.handed.done())

    def try_acquire(self, seconds: float) -> bool:
        """Take a free slot (or a place ahead) at once, never before a job already waiting."""
        if self.busy >= self.total + self.ahead or self.waiting:
            return False
        self.busy += 1
        self._running_seconds += seconds
        return True

    def expected_wait(self) -> float:
        """Seconds a job joining the line now would wait for a slot: the work ahead of it (half
        of what runs, on average, and all that was sent ahead or waits) shared by the slots."""
        if self.total == 0:
            return float("inf")
        waiting = sum(w.seconds for w in self._line if not w.handed.done())
        # Which jobs at the transcribers decode and which wait there is not known here: share
        # their audio by count.
        at_transcribers = (
            self._running_seconds * (1 - self.running / self.busy / 2) if self.busy else 0.0
        )
        return (at_transcribers + waiting) * self.rtf / self.total

    def worth_waiting(self) -> bool:
        return self.max_wait_seconds > 0 and self.expected_wait() <= self.max_wait_seconds

    async def acquire(self, seconds: float) -> bool:
        """Wait in line for a slot, at most `max_wait_seconds`. False: the wait ran out (the
        caller sends the job elsewhere)."""
        if self.try_acquire(seconds):
            return True
        waiter = _Waiter(seconds)
        self._line.append(waiter)
        try:
            await asyncio.wait({waiter.handed}, timeout=self.max_wait_seconds)
        except asyncio.CancelledError:
            if waiter.handed.done() and not waiter.handed.cancelled():
                self.release(seconds)  # handed a slot in the same moment: pass it on
            waiter.handed.cancel()
            raise
        finally:
            self._forget_done()
        if waiter.handed.done() and not waiter.handed.cancelled():
            return True
        waiter.handed.cancel()
        self._forget_done()
        return False

    def release(self, seconds: float) -> None:
        """Give the slot to the first job in line, or free it."""
        self._running_seconds = max(0.0, self._running_seconds - seconds)
        while self._line:
            waiter = self._line.popleft()
            if not waiter.handed.done():
                waiter.handed.set_result(None)
                self._running_seconds += waiter.seconds
                return
        self.busy = max(0, self.busy - 1)

    def finished(self, audio_seconds: float, wall_seconds: float) -> None:
        """A direct job transcribed `audio_seconds` in `wall_seconds` once it had a slot: learn
        the slots' speed."""
        if audio_seconds <= 0 or wall_seconds <= 0:
            return
        self.rtf += _RTF_WEIGHT * (wall_seconds / audio_seconds - self.rtf)

    def _forget_done(self) -> None:
        while self._line and self._line[0].handed.done():
            self._line.popleft()
