"""python -m services.scheduler.worker — a forking RQ worker beside one transcriber.

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
import ctypes
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import redis
from rq import Worker
from rq.job import JobStatus
from rq.serializers import JSONSerializer
from rq.utils import utcparse
from rq.worker.base import StopRequested
from rq.worker_registration import unregister

from services.common import logs, metrics
from services.common.config import Env, LogConfig, load_log_config
from services.common.errors import ConfigError
from services.common.tls import ClientTLS, load_client_tls
from services.scheduler import queue, tasks
from services.scheduler.connections import sync_client
from services.scheduler.records import Keys
from services.scheduler.transcriber_watch import TranscriberMonitor

_PR_SET_PDEATHSIG = 1
# A blocked dequeue (BLPOP) lasts worker_ttl - 15 s; keep it well under the socket timeout.
WORKER_TTL_SECONDS = 20
SOCKET_TIMEOUT_SECONDS = 30.0
_REDIS_ERRORS = (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError)

log = logs.get_logger("sayit.worker")


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
    # RQ backs off up to 60 s between dequeue attempts while Redis is down; after a Redis
    # restart that would leave queued chunks waiting for a minute.
    max_connection_wait_time = 5.0

    def __init__(self, *args: Any, transcriber: TranscriberMonitor, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.transcriber = transcriber
        self._paused = False
        self.shutdown_requested = False

    def request_stop(self, signum: Any, frame: Any) -> None:
        # RQ ends its loop quietly when a shutdown finds it idle; remember that it was asked.
        self.shutdown_requested = True
        super().request_stop(signum, frame)

    def get_heartbeat_ttl(self, job: Any, working_time: float = 0.0) -> int:
        return int(self.job_monitoring_interval + self.heartbeat_grace_seconds)

    def main_work_horse(self, job: Any, queue: Any) -> None:
        _die_with_parent()
        super().main_work_horse(job, queue)

    # --- no work without a transcriber -------------------------------------------------------

    def dequeue_job_and_maintain_ttl(
        self, timeout: int | None, max_idle_time: int | None = None
    ) -> Any:
        while not self.transcriber.serving():
            if not self._paused:
                self._paused = True
                log.warning(
                    "worker_paused",
                    reason="transcriber not serving",
                    transcriber=self.transcriber.status,
                )
            self.heartbeat()
            self.transcriber.wait_serving(self.job_monitoring_interval)
        if self._paused:
            self._paused = False
            log.info("worker_resumed")
        return super().dequeue_job_and_maintain_ttl(timeout, max_idle_time)

    def execute_job(self, job: Any, queue: Any) -> None:
        # The transcriber may have died while this worker waited on the queue: give the job
        # back (at the front, no retry spent) rather than run it into a dead transcriber.
        if not self.transcriber.serving():
            self._give_back(job, queue)
            return
        # RQ's own lines about this job (timeouts, a killed work horse) carry its ids too.
        meta = job.meta or {}
        logs.bind(job_id=job.id, request_id=meta.get("request_id") or job.id[:16])
        try:
            super().execute_job(job, queue)
        finally:
            logs.unbind("job_id", "request_id")
        try:
            finished = job.get_status(refresh=True) == JobStatus.FINISHED
        except Exception:  # Redis down, job gone: assume the worst
            finished = False
        if not finished:
            # It failed, perhaps because the transcriber just died: know that before taking
            # the next job (its retry, at the front of the queue, would be the next).
            self.transcriber.refresh()

    def _give_back(self, job: Any, queue: Any) -> None:
        with self.connection.pipeline() as pipeline:
            queue.push_job_id(job.id, pipeline=pipeline, at_front=True)
            if len(self.queues) == 1:  # RQ moved it to the intermediate queue (LMOVE)
                pipeline.lrem(queue.intermediate_queue_key, 1, job.id)
            pipeline.execute()
        log.warning("job_given_back", rq_job=job.id, transcriber=self.transcriber.status)

    # --- riding out Redis outages -----------------------------------------------------------

    def maintain_heartbeats(self, job: Any, execution: Any) -> None:
        # A Redis restart must not end the worker (and with it, the horse's chunk): skip the
        # heartbeat and keep watching the horse; the next one goes through.
        try:
            super().maintain_heartbeats(job, execution)
        except _REDIS_ERRORS as error:
            log.warning("heartbeat_failed", error=str(error))

    def register_birth(self) -> None:
        self._clear_stale_registration()
        super().register_birth()

    def _clear_stale_registration(self) -> None:
        """Take over this worker's name from a registration that is ours (an earlier round of
        the loop in this process) or whose worker stopped sending heartbeats (it was killed),
        instead of refusing to start as RQ does."""
        stale_after = 3 * max(self.dequeue_timeout, self.job_monitoring_interval)
        waiting = False
        while True:
            fields: dict[bytes, bytes] = self.connection.hgetall(self.key)  # type: ignore[assignment]
            if not fields or b"death" in fields:
                return
            ours = (
                fields.get(b"pid") == str(os.getpid()).encode()
                and fields.get(b"hostname") == socket.gethostname().encode()
            )
            last = fields.get(b"last_heartbeat")
            age = (
                (datetime.now(UTC) - utcparse(last.decode()).replace(tzinfo=UTC)).total_seconds()
                if last
                else stale_after + 1
            )
            if ours or age > stale_after:
                unregister(self)
                self.connection.delete(self.key)
                return
            if not waiting:
                waiting = True
                log.warning("worker_name_in_use", name=self.name, heartbeat_age=round(age, 1))
            time.sleep(1.0)


def _die_with_parent() -> None:
    """SIGKILL this work horse when its worker dies, so no orphan keeps a job RQ will retry."""
    parent = os.getppid()
    try:
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    except (OSError, AttributeError):  # not Linux: the heartbeat timeout still recovers the job
        return
    if os.getppid() != parent:
        os._exit(1)


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
