"""Admission: where a new job goes (a direct slot now, a wait for one, or a queue) and whether it
may go there at all. Routing, the direct slots, queue backpressure and the budget of stored audio
answer that one question."""

from __future__ import annotations

from services.scheduler.admission.backpressure import Backpressure
from services.scheduler.admission.direct_slots import DirectSlots
from services.scheduler.admission.routing import Route, choose, is_short
from services.scheduler.admission.stored_audio import StoredAudio


class Admission:
    def __init__(
        self,
        sync_max_seconds: float,
        slots: DirectSlots,
        backpressure: Backpressure | None = None,
        stored_audio: StoredAudio | None = None,
    ) -> None:
        self.sync_max_seconds = sync_max_seconds
        self.slots = slots
        self._backpressure = backpressure
        self._stored_audio = stored_audio

    def is_short(self, duration: float) -> bool:
        return is_short(duration, self.sync_max_seconds)

    async def admit(self, duration: float, *, queue_only: bool, audio_bytes: int = 0) -> Route:
        """The route of a new job, with its direct slot taken if it has one free
        (`Route.reserved`); RESOURCE_EXHAUSTED when it would wait too long in the queue, or
        when its `audio_bytes` (stored in Redis while queued) would pass the audio budget."""
        short = self.is_short(duration)
        reserved = short and not queue_only and self.slots.try_acquire(duration)
        route = choose(
            duration,
            queue_only=queue_only,
            sync_max_seconds=self.sync_max_seconds,
            direct_slot_free=reserved,
            direct_wait_short=not reserved and self.slots.worth_waiting(),
        )
        if not route.direct and self._backpressure is not None:
            await self._backpressure.admit(route.queue, duration)
        if not route.direct and self._stored_audio is not None:
            await self._stored_audio.admit(audio_bytes, duration)
        return route

    def withdraw(self, route: Route, duration: float) -> None:
        """Give back what `admit` took for a job that will not run after all."""
        if route.reserved:
            self.slots.release(duration)


__all__ = ["Admission", "Backpressure", "DirectSlots", "Route", "StoredAudio"]
