"""services.scheduler.config.

Every environment is a plain dict: nothing here reads or writes os.environ.
"""

from __future__ import annotations

import pytest

from services.common.errors import ConfigError
from services.scheduler.config import load_config as scheduler_config


def test_scheduler_sends_one_job_ahead_per_direct_slot() -> None:
    assert (scheduler_config({}).direct_slots, scheduler_config({}).direct_ahead) == (2, 2)
    assert scheduler_config({"SAYIT_DIRECT_SLOTS": "4"}).direct_ahead == 4
    assert scheduler_config({"SAYIT_DIRECT_AHEAD": "0"}).direct_ahead == 0
    with pytest.raises(ConfigError, match="SAYIT_DIRECT_AHEAD"):
        scheduler_config({"SAYIT_DIRECT_AHEAD": "x"})
