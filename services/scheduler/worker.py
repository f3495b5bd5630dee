"""python -m services.scheduler.worker — a forking RQ worker beside one transcriber.

Each job runs in a forked work horse that calls the local transcriber over gRPC; this process
never creates a gRPC channel or loads a model, so forking stays safe. Heartbeats are short so a
dead worker's job is noticed in seconds, not RQ's default ten minutes, and a work horse dies
with its worker instead of running on unsupervised.
"""

from __future__ import annotations

import ctypes
import os
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import redis
from rq import Worker
from rq.serializers import JSONSerializer

from services.common import logs, metrics
from services.common.config import Env, LogConfig, load_log_config
from services.common.errors import ConfigError
from services.common.tls import ClientTLS, load_client_tls
from services.scheduler import queue, tasks
from services.scheduler.records import Keys

_PR_SET_PDEATHSIG = 1


@dataclass(frozen=True)
class WorkerConfig:
    redis_url: str
    transcriber_addr: str
    queues: tuple[str, ...]
    name: str | None
    heartbeat_seconds: int
    maintenance_seconds: int
    max_message_bytes: int
    key_prefix: str
    job_ttl_seconds: int
    transcriber_wait_seconds: float
    log: LogConfig
    # Prometheus /metrics listen address ("" = off) and where work horses leave their values.
    metrics_addr: str = ""
    metrics_dir: Path | None = None
    # TLS to the transcriber beside the worker (SAYIT_TLS_CA_FILE, SAYIT_TLS_CLIENT_CERT_FILE...).
    tls: ClientTLS | None = None


def load_config(environ: Mapping[str, str]) -> WorkerConfig:
    env = Env(environ)
    queues = tuple(
        q.strip() for q in env.get_str("SAYIT_WORKER_QUEUES", ",".join(queue.QUEUES)).split(",")
    )
    unknown = [q for q in queues if q not in queue.QUEUES]
    if unknown or not queues:
        raise ConfigError(
            f"SAYIT_WORKER_QUEUES must list queues among {', '.join(queue.QUEUES)}; got {unknown}"
        )
    return WorkerConfig(
        redis_url=env.get_str("SAYIT_REDIS_URL", "redis://127.0.0.1:6379/0"),
        transcriber_addr=env.get_addr("SAYIT_TRANSCRIBER_ADDR", "127.0.0.1:50053"),
        queues=queues,
        name=env.get_str("SAYIT_WORKER_NAME", "") or None,
        heartbeat_seconds=env.get_int("SAYIT_WORKER_HEARTBEAT_SECONDS", 5, min=1, max=300),
        maintenance_seconds=env.get_int("SAYIT_WORKER_MAINTENANCE_SECONDS", 10, min=1),
        max_message_bytes=env.get_int("SAYIT_MAX_REQUEST_BYTES", 100 * 1024 * 1024, min=1024),
        key_prefix=env.get_str("SAYIT_REDIS_PREFIX", "sayit"),
        job_ttl_seconds=env.get_int("SAYIT_JOB_TTL_SECONDS", 7 * 86400, min=60),
        transcriber_wait_seconds=env.get_float("SAYIT_WORKER_TRANSCRIBER_WAIT_SECONDS", 300.0),
        log=load_log_config(env),
        metrics_addr=env.get_optional_addr("SAYIT_WORKER_METRICS_ADDR"),
        metrics_dir=env.get_path("SAYIT_WORKER_METRICS_DIR", None),
        tls=load_client_tls(env),
    )


class SayItWorker(Worker):
    # A job is abandoned once its worker has been silent this long beyond one heartbeat.
    heartbeat_grace_seconds = 10

    def get_heartbeat_ttl(self, job: Any, working_time: float = 0.0) -> int:
        return int(self.job_monitoring_interval + self.heartbeat_grace_seconds)

    def main_work_horse(self, job: Any, queue: Any) -> None:
        _die_with_parent()
        super().main_work_horse(job, queue)

    def execute_job(self, job: Any, queue: Any) -> None:
        # RQ's own lines about this job (timeouts, a killed work horse) carry its ids too.
        meta = job.meta or {}
        logs.bind(job_id=job.id, request_id=meta.get("request_id") or job.id[:16])
        try:
            super().execute_job(job, queue)
        finally:
            logs.unbind("job_id", "request_id")


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


def _die_with_parent() -> None:
    """SIGKILL this work horse when its worker dies, so no orphan keeps a job RQ will retry."""
    parent = os.getppid()
    try:
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    except (OSError, AttributeError):  # not Linux: the heartbeat timeout still recovers the job
        return
    if os.getppid() != parent:
        os._exit(1)


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
    log = logs.get_logger("sayit.worker")
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
    connection = redis.Redis.from_url(config.redis_url, health_check_interval=10)
    worker = SayItWorker(
        list(config.queues),
        connection=connection,
        serializer=JSONSerializer,
        name=config.name,
        job_monitoring_interval=config.heartbeat_seconds,
        maintenance_interval=config.maintenance_seconds,
        worker_ttl=max(25, config.heartbeat_seconds * 5),
    )
    log.info("worker_started", name=worker.name, queues=list(config.queues))
    # RQ logs every maintenance pass at INFO; the job's own lines (job_started, job_finished)
    # carry what matters, so RQ only speaks up for warnings.
    # Due retries are promoted by the scheduler service (see queue.JobQueue), not by workers.
    worker.work(with_scheduler=False, logging_level="WARNING")
    log.info("worker_stopped", name=worker.name)
    if metrics_dir is not None and config.metrics_dir is None:
        shutil.rmtree(metrics_dir, ignore_errors=True)  # our own temporary directory
    return 0


if __name__ == "__main__":
    sys.exit(main())
