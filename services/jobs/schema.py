"""How jobs are laid out in Redis: key names, job states and routes.

A job is a record hash, an event stream and, once queued, a chunk hash (its plan, each chunk's
progress, watermark and transcript), plus the audio waiting to be transcribed. Every change to a
job goes through one Lua script (append_event.lua, see services.jobs.changes).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

QUEUED, RUNNING, SUCCEEDED, FAILED, CANCELLED = (
    "QUEUED",
    "RUNNING",
    "SUCCEEDED",
    "FAILED",
    "CANCELLED",
)
ACTIVE = (QUEUED, RUNNING)
TERMINAL = (SUCCEEDED, FAILED, CANCELLED)
DIRECT, QUEUED_ROUTE = "DIRECT", "QUEUED"


@dataclass(frozen=True)
class Keys:
    prefix: str = "sayit"

    def record(self, job_id: str) -> str:
        return f"{self.prefix}:job:{job_id}"

    def events(self, job_id: str) -> str:
        return f"{self.prefix}:job:{job_id}:events"

    def audio(self, job_id: str) -> str:
        """The caller's audio while the job waits to be planned into chunks."""
        return f"{self.prefix}:job:{job_id}:audio"

    def chunks(self, job_id: str) -> str:
        """The job's chunk plan, progress, watermarks and transcripts (a hash)."""
        return f"{self.prefix}:job:{job_id}:chunks"

    def chunk_audio(self, job_id: str, index: int) -> str:
        return f"{self.prefix}:job:{job_id}:audio:{index}"

    def stored_audio(self) -> str:
        """The set of every audio key written (the caller's files and chunks), so admission can
        sum the bytes Redis holds for them; members whose key expired are pruned as found."""
        return f"{self.prefix}:audio-keys"

    def result_cache(self, tenant: str, fingerprint: str) -> str:
        """A tenant's finished transcript of some audio under some effective config."""
        return f"{self.prefix}:cache:{tenant}:{fingerprint}"

    def in_flight(self, tenant: str, fingerprint: str) -> str:
        """The tenant's job now transcribing this audio under this config."""
        return f"{self.prefix}:inflight:{tenant}:{fingerprint}"

    def idempotency(self, tenant: str, key_digest: str) -> str:
        """The job a tenant's CreateJob idempotency key names."""
        return f"{self.prefix}:idem:{tenant}:{key_digest}"

    def tenant_jobs(self, tenant: str) -> str:
        return f"{self.prefix}:tenant:{tenant}:jobs"

    def active(self) -> str:
        """The set of jobs not yet ended, which the reconciler checks on."""
        return f"{self.prefix}:active"

    def poison(self, fingerprint: str) -> str:
        """How often some audio (under some effective config) crashed a transcriber, and when
        last (see services.jobs.poison)."""
        return f"{self.prefix}:poison:{fingerprint}"

    def scheduler(self, instance: str) -> str:
        """A scheduler instance's heartbeat; its direct jobs die with it."""
        return f"{self.prefix}:scheduler:{instance}"


def now_ms() -> int:
    return int(time.time() * 1000)
