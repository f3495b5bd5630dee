"""services.scheduler.config.

Every environment is a plain dict: nothing here reads or writes os.environ.
"""

from __future__ import annotations

import pytest

from services.common.errors import ConfigError
from services.scheduler.config import SchedulerConfig, load_config


def scheduler_config(environ: dict[str, str]) -> SchedulerConfig:
    # About the other settings: internal TLS has its own tests (tests/unit/common/test_peers.py).
    return load_config({"SAYIT_INTERNAL_TLS": "off", **environ})


def test_scheduler_sends_one_job_ahead_per_direct_slot() -> None:
    assert (scheduler_config({}).direct_slots, scheduler_config({}).direct_ahead) == (2, 2)
    assert scheduler_config({"SAYIT_DIRECT_SLOTS": "4"}).direct_ahead == 4
    assert scheduler_config({"SAYIT_DIRECT_AHEAD": "0"}).direct_ahead == 0
    with pytest.raises(ConfigError, match="SAYIT_DIRECT_AHEAD"):
        scheduler_config({"SAYIT_DIRECT_AHEAD": "x"})


def test_scheduler_defaults_and_derived_policies() -> None:
    config = scheduler_config({"SAYIT_JOB_TTL_SECONDS": "3600", "SAYIT_JOB_RETRIES": "0"})
    assert config.server.addr == "127.0.0.1:50052"
    assert config.job_ttl_seconds == config.queue.result_ttl_seconds == 3600
    assert (config.queue.retries, config.queue.timeout_factor) == (0, 3.0)
    assert (config.chunking.target_seconds, config.chunking.min_seconds) == (180.0, 120.0)
    # The direct transcribers may be a dns:/// name that balances over several.
    target = "dns:///transcriber-direct:50053"
    assert scheduler_config({"SAYIT_TRANSCRIBER_ADDR": target}).transcriber_addr == target


def test_scheduler_names_every_bad_variable() -> None:
    with pytest.raises(ConfigError) as caught:
        scheduler_config({"SAYIT_DIRECT_SLOTS": "-1", "SAYIT_JOB_RETRIES": "11"})
    assert str(caught.value).splitlines() == [
        "SAYIT_DIRECT_SLOTS must be >= 0; got -1",
        "SAYIT_JOB_RETRIES must be <= 10; got 11",
    ]
