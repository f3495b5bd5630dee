"""services.worker.config.

Every environment is a plain dict: nothing here reads or writes os.environ.
"""

from __future__ import annotations

import re

import pytest

from services.common.errors import ConfigError
from services.jobs.queue import QUEUES
from services.worker.config import load_config


def test_worker_defaults() -> None:
    config = load_config({})
    assert config.queues == QUEUES
    assert config.name is None
    assert (config.heartbeat_seconds, config.maintenance_seconds) == (5, 10)
    assert config.transcriber_addr == "127.0.0.1:50053"
    assert config.metrics_dir is None and config.tls is None


def test_worker_queues() -> None:
    assert load_config({"SAYIT_WORKER_QUEUES": " sayit-default "}).queues == ("sayit-default",)
    message = (
        "SAYIT_WORKER_QUEUES must list queues among sayit-high, sayit-default; "
        "got 'sayit-low,sayit-high'"
    )
    with pytest.raises(ConfigError, match=f"^{re.escape(message)}$"):
        load_config({"SAYIT_WORKER_QUEUES": "sayit-low,sayit-high"})
    with pytest.raises(ConfigError, match="SAYIT_WORKER_QUEUES must list queues"):
        load_config({"SAYIT_WORKER_QUEUES": ","})


def test_worker_rejects() -> None:
    with pytest.raises(
        ConfigError, match=r"^SAYIT_WORKER_HEARTBEAT_SECONDS must be <= 300; got 301$"
    ):
        load_config({"SAYIT_WORKER_HEARTBEAT_SECONDS": "301"})
    with pytest.raises(ConfigError, match=r"^SAYIT_TRANSCRIBER_ADDR must be host:port"):
        load_config({"SAYIT_TRANSCRIBER_ADDR": "dns:///transcriber:50053"})
