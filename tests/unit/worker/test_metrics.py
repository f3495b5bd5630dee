"""The queue worker's metrics (services.worker.metrics) and its multiprocess mode with real
forked processes."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

from devsupport.processes import ROOT
from services.jobs import metrics as job_metrics
from services.worker import metrics as worker_metrics


def test_metrics_touched_in_work_horses_have_labels() -> None:
    """An unlabelled metric creates its value at import, before the worker switches to
    multiprocess mode, and would not reach the worker's endpoint."""
    for metric in (
        job_metrics.JOBS_FINISHED,
        worker_metrics.QUEUE_WAIT,
        job_metrics.CHUNK_RETRIES,
    ):
        assert metric._labelnames, metric


_FORKING = """
import os, sys
from pathlib import Path
from prometheus_client import generate_latest
from services.common import metrics
from services.jobs import metrics as m
from services.worker import metrics as w

main = os.getpid()
registry = metrics.enable_multiprocess(
    Path(sys.argv[1]), lambda: f"worker-{main}" if os.getpid() == main else f"horse-{main}"
)
m.JOBS_FINISHED.labels("succeeded").inc()
for n in range(5):  # five work horses, one after another, each counting and exiting
    pid = os.fork()
    if pid == 0:
        m.JOBS_FINISHED.labels("succeeded").inc()
        w.QUEUE_WAIT.labels("sayit-default").observe(0.3 * (n + 1))
        os._exit(0)
    os.waitpid(pid, 0)
sys.stdout.write(generate_latest(registry).decode())
"""


def test_worker_multiprocess_mode_sums_forked_horses(tmp_path: Path) -> None:
    directory = tmp_path / "metrics"
    directory.mkdir()
    (directory / "stale.db").write_bytes(b"left by an earlier run")
    result = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(_FORKING), str(directory)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    lines = result.stdout.splitlines()
    assert 'sayit_jobs_finished_total{outcome="succeeded"} 6.0' in lines
    assert 'sayit_queue_wait_seconds_count{queue="sayit-default"} 5.0' in lines
    assert any(
        line.startswith('sayit_queue_wait_seconds_sum{queue="sayit-default"} 4.5') for line in lines
    )
    # The horses shared one set of files (not one per job); the stale file was wiped.
    files = sorted(p.name for p in directory.iterdir())
    assert not any("stale" in f for f in files)
    assert len([f for f in files if "horse" in f]) == 2, files  # counter and histogram
