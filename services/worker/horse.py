"""A work horse's own set-up: RQ starts a fresh process for each chunk (SpawnWorker), which
reads the worker's settings from the environment it inherited, logs like its worker, adds its
metrics to its worker's, and dies with its worker."""

from __future__ import annotations

import ctypes
import functools
import os
import signal

from services.common import logs, metrics
from services.worker.config import WorkerConfig, load_config

_PR_SET_PDEATHSIG = 1


@functools.cache
def settings() -> WorkerConfig:
    """The worker's settings, read once per horse; logging and metrics set up with them."""
    config = load_config(os.environ)
    logs.configure("worker", config.log)
    if os.environ.get(metrics.MULTIPROCESS_DIR_VARIABLE):
        # Horses run one after another: they continue one shared file set of their worker's.
        worker = os.getppid()
        metrics.join_multiprocess(lambda: f"horse-{worker}")
    return config


def die_with_parent() -> None:
    """SIGKILL this work horse when its worker dies, so no orphan keeps a chunk RQ will retry
    elsewhere (a horse runs in a process group of its own, which a kill of its worker's group
    does not reach)."""
    try:
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    except (OSError, AttributeError):  # not Linux: the heartbeat timeout still recovers the job
        return
    if os.getppid() == 1:  # the worker died before the line above
        os._exit(1)
