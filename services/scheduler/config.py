"""Scheduler settings (SAYIT_* variables), read once in __main__, and the config derived from
them."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from pydantic import Field

from services.common.config import ServerConfig
from services.common.redis_client import DEFAULT_POOL, RedisPool
from services.common.settings import HostPort, Int, OptionalHostPort, doc
from services.common.shared_settings import (
    InternalServerSettings,
    JobTTLSettings,
    MaxAudioSettings,
    RedisSettings,
)
from services.jobs.poison import KEEP_SECONDS
from services.jobs.queue import QueuePolicy
from services.scheduler.budget import BudgetPolicy
from services.scheduler.chunking import ChunkPolicy
from services.scheduler.poison import PoisonPolicy

DEFAULT_ADDR = "127.0.0.1:50052"
DAY = 86400


@dataclass(frozen=True)
class SchedulerConfig:
    server: ServerConfig
    redis_url: str = field(repr=False)  # holds the Redis password
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
    # Prometheus /metrics listen address; "" = off.
    metrics_addr: str = ""
    # Short jobs sent to the direct transcribers beyond their slots, to wait there for one
    # (see DirectSlots; a waiting call decodes its audio once it holds the slot); the
    # transcribers must let as many calls wait (SAYIT_TRANSCRIBER_WAITING), or those jobs are
    # queued instead.
    direct_ahead: int = 0
    # Backpressure: new queued work is refused while the estimated queue wait is longer than
    # this (0 = never); the real-time factor assumed until finished jobs measure it.
    max_queue_wait_seconds: float = 3600.0
    default_rtf: float = 0.3
    # How long a job may take before the reconciler fails it (services.scheduler.budget).
    budget: BudgetPolicy = field(
        default_factory=lambda: BudgetPolicy(
            min_seconds=600.0, factor=3.0, queue_wait_seconds=3600.0
        )
    )
    # When audio that crashed a transcriber is refused (services.scheduler.poison).
    poison: PoisonPolicy = field(default_factory=lambda: PoisonPolicy(ttl_seconds=3600, crashes=1))
    redis_pool: RedisPool = DEFAULT_POOL
    # Events queued for one watcher before it is left to catch up from the stream (WatchHub).
    watch_queue_events: int = 256
    # Bytes of queued audio Redis may hold before new queued work is refused (0 = half of
    # Redis's maxmemory; see admission.stored_audio).
    stored_audio_budget_bytes: int = 0
    # Live sessions (StreamingRecognize) this scheduler runs at once: the direct transcribers'
    # session places; 0 = none.
    stream_sessions: int = 4


class SchedulerSettings(InternalServerSettings, RedisSettings, JobTTLSettings, MaxAudioSettings):
    """The scheduler takes the tenant from the request, so only the gateway, which authenticated
    the caller, may call it: SAYIT_TLS_ALLOWED_PEERS defaults to `gateway`, and with internal
    TLS on (the default) services.common.peers refuses every other certificate."""

    used_by = "scheduler"

    scheduler_addr: HostPort = Field(
        DEFAULT_ADDR, description="for the scheduler, its listen address"
    )
    scheduler_metrics_addr: OptionalHostPort = Field(
        "", description="Prometheus `/metrics` listen address of the scheduler; empty = off"
    )
    transcriber_addr: str = Field(
        "127.0.0.1:50053",
        description="for the scheduler, the direct transcribers (a `dns:///` name balances "
        "round-robin)",
    )
    sync_max_seconds: float = Field(30.0, ge=0.0, description="audio shorter than this runs direct")
    direct_slots: Int = Field(
        2,
        ge=0,
        le=1024,
        description="direct transcription slots (the direct transcribers' total); beyond, short "
        "audio waits for a slot (below) or on the high-priority queue",
    )
    direct_ahead: Int | None = Field(
        None,
        ge=0,
        le=1024,
        description="short jobs sent to the direct transcribers beyond their slots, to wait "
        "there in line so that a freed slot starts its next job without a round trip through "
        "the scheduler (without it a slot idled ~3% of a busy round between jobs; a waiting "
        "call decodes its audio once it holds the slot); the transcribers' "
        "`SAYIT_TRANSCRIBER_WAITING` must allow as many, or those jobs are queued; `0` = off",
        json_schema_extra=doc("`SAYIT_DIRECT_SLOTS`"),
    )
    direct_wait_seconds: float = Field(
        10.0,
        ge=0.0,
        description="how long a short job may wait in the scheduler for a direct slot (first "
        "come, first served; state QUEUED, routing DIRECT) before it goes to the high-priority "
        "queue; a job whose expected wait (audio ahead × the slots' measured real-time factor) "
        "is longer goes there at once; `0` = never wait",
    )
    audio_ttl_seconds: Int = Field(
        DAY,
        ge=60,
        description="how long queued audio (and each chunk's) waits to be transcribed",
    )
    chunk_target_seconds: float = Field(
        180.0,
        ge=10.0,
        description="queued audio is cut at pauses into chunks of about this length, one RQ "
        "job each",
    )
    chunk_min_seconds: float = Field(
        120.0, ge=0.0, description="audio shorter than this stays one chunk"
    )
    result_cache_ttl_seconds: Int = Field(
        DAY,
        ge=0,
        description="how long a tenant's finished transcript is served again for the same "
        "audio and effective config (`from_cache`); `0` turns the cache and in-flight sharing "
        "off",
    )
    job_timeout_factor: float = Field(
        3.0,
        ge=0.1,
        description="RQ `job_timeout` of a chunk = its audio seconds × factor + "
        "`SAYIT_JOB_TIMEOUT_MIN_SECONDS`",
    )
    job_timeout_min_seconds: Int = Field(
        120, ge=10, description="the minimum of `SAYIT_JOB_TIMEOUT_FACTOR`'s timeout"
    )
    job_retries: Int = Field(
        2,
        ge=0,
        le=10,
        description="extra attempts of a chunk after a transient failure (its transcriber or "
        "worker died), at once, at the front of the queue; never for bad audio. A chunk that "
        "fails every attempt fails its job",
    )
    reconcile_seconds: float = Field(
        5.0,
        ge=0.5,
        description="how often dead workers' chunks are retried or failed, lost chunks "
        "re-queued and unplanned jobs planned",
    )
    max_queue_wait_seconds: float = Field(
        3600.0,
        ge=0.0,
        description="refuse new queued work while the queue's estimated wait is longer; 0 = never",
    )
    queue_default_rtf: float = Field(
        0.3,
        ge=0.001,
        le=100.0,
        description="real-time factor of a queue worker assumed until finished jobs measure it",
    )
    watch_queue_events: Int = Field(
        256,
        ge=2,
        le=100_000,
        description="events held in memory for one open job stream that reads slowly; beyond, "
        "it catches up from Redis by itself instead of holding up the others",
    )
    stored_audio_budget_bytes: Int = Field(
        0,
        ge=0,
        description="bytes of queued audio (callers' files waiting to be cut, and FLAC chunks "
        "waiting to be transcribed) Redis may hold; new queued work that would pass it is "
        "refused with RESOURCE_EXHAUSTED before its audio is written; `0` = half of Redis's "
        "`maxmemory` (no limit if Redis has none)",
    )

    stream_sessions: Int = Field(
        4,
        ge=0,
        le=10_000,
        description="live sessions (`StreamingRecognize`) this scheduler runs at once, each "
        "holding a session place on a direct transcriber for its whole life: the direct "
        "transcribers' `SAYIT_TRANSCRIBER_STREAM_SESSIONS` summed; beyond, a new session is "
        "refused RESOURCE_EXHAUSTED with a retry hint; `0` = no live sessions",
    )

    job_budget_min_seconds: float = Field(
        600.0,
        ge=1.0,
        description="every job's processing budget starts at this; a job still not ended when "
        "its budget (counted from its creation) is spent is failed with DEADLINE_EXCEEDED",
    )
    job_budget_factor: float = Field(
        3.0,
        ge=0.0,
        description="processing budget = `SAYIT_JOB_BUDGET_MIN_SECONDS` + audio seconds × "
        "factor, plus `SAYIT_MAX_QUEUE_WAIT_SECONDS` for a queued job",
    )
    poison_ttl_seconds: Int = Field(
        3600,
        ge=0,
        le=KEEP_SECONDS,
        description="audio (under the same settings) whose transcription crashed a transcriber "
        "is refused at once (FAILED, INTERNAL) for this long after its last crash, once it "
        "crashed `SAYIT_POISON_CRASHES` times; `0` = never refused",
    )
    poison_crashes: Int = Field(
        1,
        ge=1,
        le=100,
        description="crashes within `SAYIT_POISON_TTL_SECONDS` after which the same audio is "
        "refused (a queued chunk's crash counts once per attempt)",
    )

    def config(self) -> SchedulerConfig:
        return SchedulerConfig(
            server=self.server_config(self.scheduler_addr),
            redis_url=self.redis_url,
            key_prefix=self.redis_prefix,
            sync_max_seconds=self.sync_max_seconds,
            transcriber_addr=self.transcriber_addr,
            direct_slots=self.direct_slots,
            direct_ahead=self.direct_slots if self.direct_ahead is None else self.direct_ahead,
            direct_wait_seconds=self.direct_wait_seconds,
            job_ttl_seconds=self.job_ttl_seconds,
            audio_ttl_seconds=self.audio_ttl_seconds,
            max_audio_seconds=self.max_audio_seconds,
            reconcile_seconds=self.reconcile_seconds,
            queue=QueuePolicy(
                timeout_factor=self.job_timeout_factor,
                timeout_minimum_seconds=self.job_timeout_min_seconds,
                retries=self.job_retries,
                result_ttl_seconds=self.job_ttl_seconds,
            ),
            chunking=ChunkPolicy(
                target_seconds=self.chunk_target_seconds,
                min_seconds=self.chunk_min_seconds,
            ),
            result_cache_ttl_seconds=self.result_cache_ttl_seconds,
            metrics_addr=self.scheduler_metrics_addr,
            max_queue_wait_seconds=self.max_queue_wait_seconds,
            default_rtf=self.queue_default_rtf,
            budget=BudgetPolicy(
                min_seconds=self.job_budget_min_seconds,
                factor=self.job_budget_factor,
                queue_wait_seconds=self.max_queue_wait_seconds,
            ),
            poison=PoisonPolicy(ttl_seconds=self.poison_ttl_seconds, crashes=self.poison_crashes),
            redis_pool=self.redis_pool,
            watch_queue_events=self.watch_queue_events,
            stored_audio_budget_bytes=self.stored_audio_budget_bytes,
            stream_sessions=self.stream_sessions,
        )


def load_config(environ: Mapping[str, str]) -> SchedulerConfig:
    return SchedulerSettings.from_env(environ).config()
