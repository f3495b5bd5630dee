"""python -m services.worker — an RQ worker beside one transcriber.

Each chunk runs in a work horse that RQ spawns for it (services.worker.chunk_worker) and that
calls the local transcriber over gRPC. Heartbeats are short so a dead worker's chunk is noticed
in seconds, and a work horse dies with its worker instead of running on unsupervised. The worker
takes no chunk while its transcriber is not serving, and rides out Redis restarts: its Redis
client retries for a minute (services.common.redis_client), and should RQ's loop still end on a
Redis error, it is started again until a shutdown is asked for.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import signal
import sys
import tempfile
import time
from pathlib import Path

import redis
from rq.serializers import JSONSerializer
from rq.worker.base import StopRequested

from services.common import logs, metrics
from services.common.errors import ConfigError
from services.common.redis_client import BACKGROUND, sync_client
from services.worker.chunk_worker import SHUTDOWN_SIGNALS, ChunkWorker
from services.worker.config import WorkerConfig, load_config
from services.worker.transcriber_monitor import TranscriberMonitor

# A blocked dequeue (BLPOP) lasts worker_ttl - 15 s; keep it well under the socket timeout.
WORKER_TTL_SECONDS = 20
SOCKET_TIMEOUT_SECONDS = 30.0

log = logs.get_logger("sayit.worker")


def _serve_metrics(config: WorkerConfig) -> Path:
    """Metrics of this worker and of every work horse it runs, summed (multiprocess mode)."""
    main_pid = os.getpid()
    directory = config.metrics_dir or Path(tempfile.gettempdir()) / f"sayit-worker-{main_pid}"
    registry = metrics.enable_multiprocess(directory, lambda: f"worker-{main_pid}")
    metrics.serve(config.metrics_addr, registry)
    return directory


def main() -> int:
    try:
        config = load_config(os.environ)
    except ConfigError as error:
        print(f"worker: bad configuration: {error}", file=sys.stderr)
        return 2
    logs.configure("worker", config.log)
    # Stopped before RQ's loop runs, there is nothing to wind down.
    for signum in SHUTDOWN_SIGNALS:
        signal.signal(signum, _exit_at_once)
    metrics_dir = None
    if config.metrics_addr:
        try:
            metrics_dir = _serve_metrics(config)
        except (RuntimeError, OSError) as error:
            print(f"worker: {error}", file=sys.stderr)
            return 1
    transcriber = TranscriberMonitor(config.transcriber_addr, config.tls)
    try:
        log.info("worker_waiting_for_transcriber", transcriber=config.transcriber_addr)
        if not transcriber.wait_serving(config.transcriber_wait_seconds):
            log.error("transcriber_not_serving", transcriber=config.transcriber_addr)
            return 1
        connection = sync_client(
            config.redis_url,
            patience=BACKGROUND,
            socket_timeout=SOCKET_TIMEOUT_SECONDS,
            pool=config.redis_pool,
            name="sayit-worker",
        )
        with contextlib.suppress(StopRequested, KeyboardInterrupt):
            _run_until_stopped(config, connection, transcriber)
        log.info("worker_stopped")
        return 0
    finally:
        transcriber.close()
        if metrics_dir is not None and config.metrics_dir is None:
            shutil.rmtree(metrics_dir, ignore_errors=True)  # our own temporary directory


def _exit_at_once(signum: int, frame: object) -> None:
    raise SystemExit(0)


def _run_until_stopped(
    config: WorkerConfig, connection: redis.Redis, transcriber: TranscriberMonitor
) -> None:
    """RQ's work loop, started again after anything but a shutdown ends it."""
    while True:
        # Until RQ's loop has installed its handlers, a SIGTERM would kill the process between
        # registering the worker and unregistering it: hold it back (ChunkWorker lets it in).
        signal.pthread_sigmask(signal.SIG_BLOCK, SHUTDOWN_SIGNALS)
        # A name of its own each time: a worker restarted after a crash must not wait for its
        # predecessor's registration to expire (RQ refuses a name that looks alive).
        name = f"{config.name}.{secrets.token_hex(3)}" if config.name else None
        worker = ChunkWorker(
            list(config.queues),
            connection=connection,
            serializer=JSONSerializer,
            name=name,
            job_monitoring_interval=config.heartbeat_seconds,
            maintenance_interval=config.maintenance_seconds,
            worker_ttl=WORKER_TTL_SECONDS,
            transcriber=transcriber,
        )
        log.info("worker_started", name=worker.name, queues=list(config.queues))
        try:
            # RQ logs every maintenance pass at INFO; the job's own lines (chunk_started,
            # chunk_finished) carry what matters, so RQ only speaks up for warnings. Due
            # retries are promoted by the scheduler service (see services.jobs.queue).
            worker.work(with_scheduler=False, logging_level="WARNING")
        except Exception as error:
            log.warning("worker_loop_failed", error=str(error))
        if worker.shutdown_requested:
            return
        log.warning("worker_restarting")
        time.sleep(1.0)


if __name__ == "__main__":
    sys.exit(main())
