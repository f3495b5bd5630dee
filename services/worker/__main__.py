"""python -m services.worker — a forking RQ worker beside one transcriber.

Each job runs in a forked work horse that calls the local transcriber over gRPC; this process
never creates a gRPC channel or loads a model, so forking stays safe. Heartbeats are short so a
dead worker's job is noticed in seconds, not RQ's default ten minutes, and a work horse dies
with its worker instead of running on unsupervised.

The worker takes no job while its transcriber is not serving (a job taken then would only fail
and burn a retry); it waits, and carries on when the transcriber is back. It also outlives Redis
restarts: RQ's own loop gives up on the first Redis error outside its dequeue, so the loop is
restarted (with backoff) until a shutdown is asked for.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import redis
from rq.serializers import JSONSerializer
from rq.worker.base import StopRequested

from services.common import logs, metrics
from services.common.errors import ConfigError
from services.jobs.connection import sync_client
from services.jobs.schema import Keys
from services.worker import tasks
from services.worker.chunk_worker import SayItWorker
from services.worker.config import WorkerConfig, load_config
from services.worker.transcriber_watch import TranscriberMonitor

_PR_SET_PDEATHSIG = 1
# A blocked dequeue (BLPOP) lasts worker_ttl - 15 s; keep it well under the socket timeout.
WORKER_TTL_SECONDS = 20
SOCKET_TIMEOUT_SECONDS = 30.0
_REDIS_ERRORS = (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError)

log = logs.get_logger("sayit.worker")


def _serve_metrics(config: WorkerConfig) -> Path:
    """Metrics of this worker and of every work horse it forks, summed (multiprocess mode)."""
    directory = config.metrics_dir or Path(tempfile.gettempdir()) / f"sayit-worker-{os.getpid()}"
    main_pid = os.getpid()
    registry = metrics.enable_multiprocess(
        directory,
        lambda: f"worker-{main_pid}" if os.getpid() == main_pid else f"horse-{main_pid}",
    )
    metrics.serve(config.metrics_addr, registry)
    return directory


def _wait_for_transcriber(config: WorkerConfig) -> bool:
    # In a child process: this process must not start gRPC before forking work horses.
    command = [
        sys.executable,
        "-m",
        "services.common.healthcheck",
        config.transcriber_addr,
        "--wait",
        str(config.transcriber_wait_seconds),
    ]
    return subprocess.run(command, capture_output=True, check=False).returncode == 0


def main() -> int:
    try:
        config = load_config(os.environ)
    except ConfigError as error:
        print(f"worker: bad configuration: {error}", file=sys.stderr)
        return 2
    logs.configure("worker", config.log)
    tasks.configure(
        tasks.WorkerContext(
            transcriber_addr=config.transcriber_addr,
            max_message_bytes=config.max_message_bytes,
            keys=Keys(config.key_prefix),
            ttl_seconds=config.job_ttl_seconds,
            tls=config.tls,
        )
    )
    metrics_dir = None
    if config.metrics_addr:
        try:
            metrics_dir = _serve_metrics(config)
        except (RuntimeError, OSError) as error:
            print(f"worker: {error}", file=sys.stderr)
            return 1
    log.info("worker_waiting_for_transcriber", transcriber=config.transcriber_addr)
    if not _wait_for_transcriber(config):
        log.error("transcriber_not_serving", transcriber=config.transcriber_addr)
        return 1
    connection = sync_client(config.redis_url, SOCKET_TIMEOUT_SECONDS)
    transcriber = TranscriberMonitor(config.transcriber_addr)
    transcriber.wait_serving(10.0)  # its first report, so the worker does not start "paused"
    try:
        return _work(config, connection, transcriber)
    finally:
        transcriber.close()
        if metrics_dir is not None and config.metrics_dir is None:
            shutil.rmtree(metrics_dir, ignore_errors=True)  # our own temporary directory


def _work(config: WorkerConfig, connection: redis.Redis, transcriber: TranscriberMonitor) -> int:
    """RQ's work loop, started again after anything but a shutdown ends it (Redis down...)."""
    # StopRequested: a shutdown asked for between two rounds of RQ's loop.
    with contextlib.suppress(StopRequested, KeyboardInterrupt):
        _run_until_stopped(config, connection, transcriber)
    log.info("worker_stopped", name=config.name)
    return 0


def _run_until_stopped(
    config: WorkerConfig, connection: redis.Redis, transcriber: TranscriberMonitor
) -> None:
    stopping = False
    delay = 1.0
    while not stopping:
        worker = SayItWorker(
            list(config.queues),
            connection=connection,
            serializer=JSONSerializer,
            name=config.name,
            job_monitoring_interval=config.heartbeat_seconds,
            maintenance_interval=config.maintenance_seconds,
            worker_ttl=WORKER_TTL_SECONDS,
            transcriber=transcriber,
        )
        log.info("worker_started", name=worker.name, queues=list(config.queues))
        try:
            # RQ logs every maintenance pass at INFO; the job's own lines (chunk_started,
            # chunk_finished) carry what matters, so RQ only speaks up for warnings. Due
            # retries are promoted by the scheduler service (see queue.JobQueue), not workers.
            worker.work(with_scheduler=False, logging_level="WARNING")
        except Exception as error:
            log.warning("worker_loop_failed", error=str(error))
        stopping = worker.shutdown_requested
        while not stopping and not _redis_answers(connection):
            log.warning("redis_unavailable", retry_in=delay)
            time.sleep(delay)
            delay = min(delay * 2, 10.0)
            stopping = worker.shutdown_requested
        if not stopping:
            log.warning("worker_restarting")
            delay = 1.0


def _redis_answers(connection: redis.Redis) -> bool:
    try:
        return bool(connection.ping())
    except (*_REDIS_ERRORS, redis.exceptions.BusyLoadingError):
        return False


if __name__ == "__main__":
    sys.exit(main())
