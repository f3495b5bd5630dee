"""The pure rules behind two of the reconciler's and the submission's decisions: a job's
processing budget, and when crashes make audio refused."""

from __future__ import annotations

import pytest

from services.jobs.poison import Crashes
from services.scheduler.budget import BudgetPolicy, exceeded_message
from services.scheduler.config import SchedulerConfig
from services.scheduler.config import load_config as load_scheduler_config
from services.scheduler.poison import PoisonPolicy


def load_config(environ: dict[str, str]) -> SchedulerConfig:
    # About the other settings: internal TLS has its own tests (tests/unit/common/test_peers.py).
    return load_scheduler_config({"SAYIT_INTERNAL_TLS": "off", **environ})


HOUR_MS = 3_600_000


@pytest.mark.parametrize(
    ("audio_seconds", "queued", "budget"),
    [(10.0, False, 630.0), (600.0, True, 6000.0), (4 * 3600.0, True, 47_400.0)],
)
def test_the_default_budget_is_a_floor_plus_three_times_the_audio_plus_the_queue_wait(
    audio_seconds: float, queued: bool, budget: float
) -> None:
    policy = load_config({}).budget
    assert policy.seconds(audio_seconds, queued=queued) == budget


def test_the_budget_follows_its_settings() -> None:
    policy = load_config(
        {
            "SAYIT_JOB_BUDGET_MIN_SECONDS": "60",
            "SAYIT_JOB_BUDGET_FACTOR": "2",
            "SAYIT_MAX_QUEUE_WAIT_SECONDS": "0",
        }
    ).budget
    assert policy == BudgetPolicy(min_seconds=60.0, factor=2.0, queue_wait_seconds=0.0)
    assert policy.seconds(30.0, queued=True) == 120.0


def test_the_budget_message_names_both_lengths_and_what_to_do() -> None:
    assert exceeded_message(47_400.0, 4 * 3600.0) == (
        "the job took longer than its processing budget (13.2 h for 4 h of audio) and was "
        "stopped; you may submit it again"
    )


def test_audio_is_refused_after_enough_recent_crashes_only() -> None:
    now = 100 * HOUR_MS
    twice = PoisonPolicy(ttl_seconds=3600, crashes=2)
    assert not twice.refuses(Crashes(1, now - 1000), now)
    assert twice.refuses(Crashes(2, now - 1000), now)
    # The ban ends an hour after the last crash.
    assert not twice.refuses(Crashes(5, now - HOUR_MS), now)
    assert not PoisonPolicy(ttl_seconds=0, crashes=1).refuses(Crashes(9, now), now)
    assert not PoisonPolicy(ttl_seconds=3600, crashes=1).refuses(Crashes(0, 0), now)
