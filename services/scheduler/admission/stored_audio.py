"""Stored audio: refuse new queued work when the audio Redis would hold for it passes a budget.

Redis runs with `maxmemory` and `noeviction`, and queued audio is nearly all of what it holds
(a 4-hour file is ~250 MB of FLAC chunks). Admission counts that audio before a job's file is
written, so a full Redis refuses new work with RESOURCE_EXHAUSTED instead of failing writes.

What is counted, and why it stays right: every audio key is written together with its name in
one set (services.jobs.schema.Keys.stored_audio), in the same MULTI. A read-only script sums
STRLEN over that set, so the sum is the bytes of the audio keys that exist *now*: a key
deleted, or expired by its TTL, counts nothing from that moment, whoever removed it, and its
name is pruned afterwards. No counter is kept that could drift. A file still waiting to be cut
into chunks counts its own bytes plus the chunks it has yet to write (its audio seconds ×
`CHUNK_BYTES_PER_SECOND`, less those already stored), since both are held while it is cut.

The budget is SAYIT_STORED_AUDIO_BUDGET_BYTES, or by default half of Redis's `maxmemory` (the
rest is records, event streams, RQ, transcripts, the result cache); with neither, no limit.
The sum is cached for a moment, and work admitted meanwhile is added to it, so a burst cannot
slip past a stale figure.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import redis.asyncio as aioredis
import redis.exceptions

from services.common import logs
from services.common.errors import QuotaViolation, ResourceExhausted
from services.jobs.schema import Keys
from services.scheduler.chunking import ChunkPolicy

log = logs.get_logger("sayit.scheduler")

SNAPSHOT_SECONDS = 2.0
# 16 kHz × 16-bit FLAC chunks of speech measured 0.53-0.60 of their WAV (32,000 B/s) on the
# evaluation clips; a little above, so planning a file never writes more than was counted.
CHUNK_BYTES_PER_SECOND = 20_000
# The share of Redis's maxmemory that audio may take when no budget is set.
DEFAULT_BUDGET_SHARE = 0.5
RETRY_AFTER_SECONDS = 30.0

# KEYS: the set of audio keys. ARGV: chunk bytes per audio second.
# Returns {bytes counted, names whose key is gone (to prune)}. Read-only, so it runs in a full
# Redis too.
SUM_SCRIPT = """#!lua flags=no-writes
local total = 0
local gone = {}
local chunk_bytes = {}  -- per job, its chunks stored so far
local waiting = {}  -- the jobs whose file is not cut yet
for _, key in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  local size = redis.call('STRLEN', key)
  if size == 0 and redis.call('EXISTS', key) == 0 then
    table.insert(gone, key)
  else
    total = total + size
    local job = string.match(key, '^(.*):audio:%d+$')
    if job then
      chunk_bytes[job] = (chunk_bytes[job] or 0) + size
    else
      job = string.match(key, '^(.*):audio$')
      if job then table.insert(waiting, job) end
    end
  end
end
-- A file being cut is about to write its chunks too: count those not written yet.
for _, job in ipairs(waiting) do
  local duration = tonumber(redis.call('HGET', job, 'duration') or '0') or 0
  total = total + math.max(0, duration * tonumber(ARGV[1]) - (chunk_bytes[job] or 0))
end
return {tostring(math.floor(total)), gone}
"""


@dataclass
class Stored:
    bytes: int  # audio held (and about to be written by planning), plus admitted since
    budget: int | None  # None: no limit
    taken: float


class StoredAudio:
    def __init__(
        self, client: aioredis.Redis, keys: Keys, policy: ChunkPolicy, *, budget_bytes: int = 0
    ) -> None:
        """`budget_bytes` 0: half of Redis's maxmemory (none if Redis has no maxmemory)."""
        self._client: Any = client
        self._script = client.register_script(SUM_SCRIPT)
        self._keys = keys
        self._policy = policy
        self._budget = budget_bytes
        self._stored: Stored | None = None
        self._warned = False

    def charge(self, audio_bytes: int, duration: float) -> int:
        """Bytes a new queued job will hold at most: its file, and while a long file is cut,
        its chunks as well."""
        if self._policy.chunk_count(duration) == 1:
            return audio_bytes
        return audio_bytes + round(duration * CHUNK_BYTES_PER_SECOND)

    async def admit(self, audio_bytes: int, duration: float) -> None:
        """Let a new queued job's audio into Redis, or refuse it with RESOURCE_EXHAUSTED (and a
        retry hint while it would fit an emptier store) before anything is written."""
        stored = await self.snapshot()
        if stored is None or stored.budget is None:
            return
        charge = self.charge(audio_bytes, duration)
        if charge > stored.budget:
            raise ResourceExhausted(
                f"the audio needs about {_mb(charge)} of queue storage, more than the "
                f"{_mb(stored.budget)} this service holds for all queued audio; send it in "
                "shorter parts",
                violations=[QuotaViolation("stored-audio", f"budget: {stored.budget} bytes")],
            )
        if stored.bytes + charge > stored.budget:
            log.warning(
                "stored_audio_full",
                stored_bytes=stored.bytes,
                budget_bytes=stored.budget,
                charge_bytes=charge,
            )
            raise ResourceExhausted(
                f"the queue's audio storage is full ({_mb(stored.bytes)} of {_mb(stored.budget)} "
                f"held for jobs not yet transcribed; this audio needs {_mb(charge)}); retry in "
                f"{RETRY_AFTER_SECONDS:.0f} s",
                retry_after_seconds=RETRY_AFTER_SECONDS,
                violations=[QuotaViolation("stored-audio", f"budget: {stored.budget} bytes")],
            )
        stored.bytes += charge  # until the next snapshot sees it

    async def snapshot(self) -> Stored | None:
        """The cached sum, refreshed when older than SNAPSHOT_SECONDS; None when Redis cannot
        be read (the writes that follow fail on their own then)."""
        cached = self._stored
        if cached is not None and time.monotonic() - cached.taken < SNAPSHOT_SECONDS:
            return cached
        try:
            total, gone = await self._script(
                keys=[self._keys.stored_audio()], args=[CHUNK_BYTES_PER_SECOND]
            )
            budget = self._budget or await self._default_budget()
            if gone:
                await self._client.srem(self._keys.stored_audio(), *gone)
        except redis.exceptions.RedisError as error:
            log.warning("stored_audio_unavailable", error=str(error))
            return None
        self._stored = Stored(int(total), budget or None, time.monotonic())
        return self._stored

    async def _default_budget(self) -> int:
        memory = await self._client.info("memory")
        maxmemory = int(memory.get("maxmemory") or 0)
        policy = str(memory.get("maxmemory_policy") or "")
        if (not maxmemory or policy != "noeviction") and not self._warned:
            # Unbounded, Redis dies (or loses jobs to eviction) when queued audio outgrows it.
            log.warning("redis_unbounded", maxmemory=maxmemory, maxmemory_policy=policy)
            self._warned = True
        return int(maxmemory * DEFAULT_BUDGET_SHARE)


def _mb(size: float) -> str:
    if size < 1e6:
        return f"{size / 1e3:.0f} kB"
    return f"{size / 1e6:.1f} MB" if size < 1e9 else f"{size / 1e9:.2f} GB"
