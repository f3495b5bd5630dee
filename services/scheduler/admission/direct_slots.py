"""The scheduler's direct transcription slots, with a first-come-first-served line of short jobs
waiting for one.

Spilling every short job that finds the slots busy onto the high-priority queue left the direct
transcribers idle while one queue worker worked through the overflow in series (8 callers on 2
slots: 0.6 of the engine's throughput). A job now waits for a direct slot while the expected wait
is short (`max_wait_seconds`), and goes to the queue only when it is not, or when its wait runs
out. The expected wait comes from the audio seconds ahead of it and the real-time factor the
direct slots have shown (a moving average, `default_rtf` until the first job finishes).

Besides the slots, `ahead` more jobs may be sent to the transcribers, where they wait, audio
sent, for a slot to free (a transcriber decodes a call's audio only once it holds a slot): the
slot then starts its next job at once instead of idling while the scheduler records the last
one, hands the slot on and sends the next job's audio (3% of a busy slot's time with short
clips).
"""

from __future__ import annotations

from services.common.slots import Slots

_RTF_WEIGHT = 0.2  # of each finished job in the moving average


class DirectSlots:
    def __init__(
        self, total: int, *, max_wait_seconds: float, default_rtf: float, ahead: int = 0
    ) -> None:
        self.total = total
        self.ahead = ahead if total else 0
        self.max_wait_seconds = max_wait_seconds
        self.rtf = default_rtf
        # Jobs at the transcribers (decoding, or sent ahead and waiting there), weighed by their
        # audio seconds; the line of jobs waiting in this scheduler has no length limit, only a
        # time limit.
        self._places = Slots(total + self.ahead, line=None)

    @property
    def busy(self) -> int:
        return self._places.busy

    @property
    def running(self) -> int:
        return min(self.busy, self.total)

    @property
    def sent_ahead(self) -> int:
        return max(0, self.busy - self.total)

    @property
    def waiting(self) -> int:
        return self._places.waiting

    def try_acquire(self, seconds: float) -> bool:
        """Take a free slot (or a place ahead) at once, never before a job already waiting."""
        return self._places.try_acquire(seconds)

    def expected_wait(self) -> float:
        """Seconds a job joining the line now would wait for a slot: the work ahead of it (half
        of what runs, on average, and all that was sent ahead or waits) shared by the slots."""
        if self.total == 0:
            return float("inf")
        busy = self.busy
        # Which jobs at the transcribers decode and which wait there is not known here: share
        # their audio by count.
        at_transcribers = self._places.busy_weight * (1 - self.running / busy / 2) if busy else 0.0
        return (at_transcribers + self._places.waiting_weight) * self.rtf / self.total

    def worth_waiting(self) -> bool:
        return self.max_wait_seconds > 0 and self.expected_wait() <= self.max_wait_seconds

    async def acquire(self, seconds: float) -> bool:
        """Wait in line for a slot, at most `max_wait_seconds`. False: the wait ran out (the
        caller sends the job elsewhere)."""
        return await self._places.acquire(seconds, timeout=self.max_wait_seconds)

    def release(self, seconds: float) -> None:
        """Give the slot to the first job in line, or free it."""
        self._places.release(seconds)

    def finished(self, audio_seconds: float, wall_seconds: float) -> None:
        """A direct job transcribed `audio_seconds` in `wall_seconds` once it had a slot: learn
        the slots' speed."""
        if audio_seconds <= 0 or wall_seconds <= 0:
            return
        self.rtf += _RTF_WEIGHT * (wall_seconds / audio_seconds - self.rtf)
