"""Scheduler settings (SAYIT_* variables), read once in __main__."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from services.common.config import Env, ServerConfig, load_server_config
from services.jobs.queue import QueuePolicy
from services.scheduler.chunking import ChunkPolicy

DEFAULT_ADDR = "127.0.0.1:50052"
DAY = 86400


@dataclass(frozen=True)
class SchedulerConfig:
    server: ServerConfig
    redis_url: str
    key_prefix: str
    # Audio shorter than this runs at once on a direct transcriber; longer is queued.
    sync_max_seconds: float
    transcriber_addr: str
    direct_slots: int
    # How long a short job may wait for a direct slot before it goes to the high-priority
    # queue (0 = never wait); it does not wait when the expected wait is longer.
    direct_wait_seconds: float
    job_ttl_seconds: int
    audio_ttl_seconds: int
    max_audio_seconds: float
    reconcile_seconds: float
    queue: QueuePolicy
    chunking: ChunkPolicy
    # How long finished transcripts are served again for the same audio and config (per
    # tenant); 0 turns the result cache and in-flight sharing off.
    result_cache_ttl_seconds: int
    # Served models, for validation at the edge and in job records.
    model: str
    # Prometheus /metrics listen address; "" = off.
    metrics_addr: str = ""
    # Short jobs sent to the direct transcribers beyond their slots, to wait there for one
    # with their audio decoded (see DirectSlots); the transcribers must let as many calls wait
    # (SAYIT_TRANSCRIBER_WAITING), or those jobs are queued instead.
    direct_ahead: int = 0
    # Backpressure: new queued work is refused while the estimated queue wait is longer than
    # this (0 = never); the real-time factor assumed until finished jobs measure it.
    max_queue_wait_seconds: float = 3600.0
    default_rtf: float = 0.3


def load_config(environ: Mapping[str, str]) -> SchedulerConfig:
    env = Env(environ)
    direct_slots = env.get_int("SAYIT_DIRECT_SLOTS", 2, min=0, max=1024)
    job_ttl = env.get_int("SAYIT_JOB_TTL_SECONDS", 7 * DAY, min=60)
    return SchedulerConfig(
        server=load_server_config(env, "SAYIT_SCHEDULER_ADDR", DEFAULT_ADDR),
        redis_url=env.get_str("SAYIT_REDIS_URL", "redis://127.0.0.1:6379/0"),
        key_prefix=env.get_str("SAYIT_REDIS_PREFIX", "sayit"),
        sync_max_seconds=env.get_float("SAYIT_SYNC_MAX_SECONDS", 30.0, min=0.0),
        transcriber_addr=env.get_str("SAYIT_TRANSCRIBER_ADDR", "127.0.0.1:50053"),
        direct_slots=direct_slots,
        direct_ahead=env.get_int("SAYIT_DIRECT_AHEAD", direct_slots, min=0, max=1024),
        direct_wait_seconds=env.get_float("SAYIT_DIRECT_WAIT_SECONDS", 10.0, min=0.0),
        job_ttl_seconds=job_ttl,
        audio_ttl_seconds=env.get_int("SAYIT_AUDIO_TTL_SECONDS", DAY, min=60),
        max_audio_seconds=env.get_float("SAYIT_MAX_AUDIO_SECONDS", 4 * 3600.0, min=1.0),
        reconcile_seconds=env.get_float("SAYIT_RECONCILE_SECONDS", 5.0, min=0.5),
        queue=QueuePolicy(
            timeout_factor=env.get_float("SAYIT_JOB_TIMEOUT_FACTOR", 3.0, min=0.1),
            timeout_minimum_seconds=env.get_int("SAYIT_JOB_TIMEOUT_MIN_SECONDS", 120, min=10),
            retries=env.get_int("SAYIT_JOB_RETRIES", 2, min=0, max=10),
            result_ttl_seconds=job_ttl,
        ),
        chunking=ChunkPolicy(
            target_seconds=env.get_float("SAYIT_CHUNK_TARGET_SECONDS", 180.0, min=10.0),
            min_seconds=env.get_float("SAYIT_CHUNK_MIN_SECONDS", 120.0, min=0.0),
        ),
        result_cache_ttl_seconds=env.get_int("SAYIT_RESULT_CACHE_TTL_SECONDS", DAY, min=0),
        model=env.get_str("SAYIT_MODEL", "base"),
        metrics_addr=env.get_optional_addr("SAYIT_SCHEDULER_METRICS_ADDR"),
        max_queue_wait_seconds=env.get_float("SAYIT_MAX_QUEUE_WAIT_SECONDS", 3600.0, min=0.0),
        default_rtf=env.get_float("SAYIT_QUEUE_DEFAULT_RTF", 0.3, min=0.001, max=100.0),
    )
