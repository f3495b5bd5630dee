"""A job's processing budget: how long it may take, from its creation, before the reconciler
fails it (DEADLINE_EXCEEDED), whatever its routing, so that no job runs or waits forever.

budget = SAYIT_JOB_BUDGET_MIN_SECONDS + SAYIT_JOB_BUDGET_FACTOR × audio seconds, plus, for a job
that goes to the queue, SAYIT_MAX_QUEUE_WAIT_SECONDS (the longest wait admission lets new queued
work in with). It is written into the job's record when the job is created (and again when a
direct job overflows to the queue), so a change of settings does not move running jobs'
budgets.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class BudgetPolicy:
    min_seconds: float
    factor: float
    # Added for queued jobs: the queue may make them wait this long before any work starts.
    queue_wait_seconds: float = 0.0

    def seconds(self, audio_seconds: float, *, queued: bool) -> float:
        budget = self.min_seconds + self.factor * max(0.0, audio_seconds)
        return round(budget + (self.queue_wait_seconds if queued else 0.0), 3)


def exceeded_message(budget_seconds: float, audio_seconds: float) -> str:
    return (
        f"the job took longer than its processing budget ({_span(budget_seconds)} for "
        f"{_span(audio_seconds)} of audio) and was stopped; you may submit it again"
    )


def _span(seconds: float) -> str:
    whole = round(seconds)
    if whole < 120:
        return f"{seconds:.3g} s"
    if whole < 7200:
        return f"{whole / 60:.3g} min"
    return f"{whole / 3600:.3g} h"
