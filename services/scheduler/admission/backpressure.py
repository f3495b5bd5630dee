"""Queue backpressure: refuse new queued work while the queue's estimated wait is too long.

    estimated wait = audio seconds queued ahead × real-time factor ÷ live workers

- Audio queued ahead is read from RQ itself (each RQ job's meta carries `audio_seconds`), so it
  cannot drift the way a counter kept at enqueue/start would when jobs are cancelled, retried or
  lost with a worker. Work on a queue waits behind every queue of higher priority.
- The real-time factor is the median wall time ÷ audio seconds of the latest queued jobs that
  finished with a transcript (RQ's finished registries), or SAYIT_QUEUE_DEFAULT_RTF until some
  have.
- Live workers are those RQ still has a heartbeat key for, among the queue's listeners; none
  counts as one (workers restarting should not refuse all work).

One Lua script takes the whole snapshot. It is cached for a moment, and work admitted
meanwhile is added to the cached snapshot, so a burst cannot slip past a stale estimate.
"""

from __future__ import annotations

import json
import statistics
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import redis.asyncio as aioredis
import redis.exceptions
from rq.job import Job
from rq.queue import Queue
from rq.registry import FinishedJobRegistry
from rq.worker_registration import WORKERS_BY_QUEUE_KEY

from services.common import logs
from services.common.errors import QuotaViolation, ResourceExhausted
from services.jobs import schema
from services.jobs.queue import QUEUES
from services.jobs.schema import Keys

log = logs.get_logger("sayit.scheduler")

SNAPSHOT_SECONDS = 2.0
# Queued jobs read per queue; longer queues are extrapolated from these (bounded script time).
SAMPLE_QUEUED = 2000
# Finished jobs the real-time factor is measured over, per queue.
SAMPLE_FINISHED = 20
# Jobs shorter than this say little about the real-time factor (model load, fixed costs).
MIN_SAMPLE_AUDIO_SECONDS = 5.0
MAX_RETRY_AFTER_SECONDS = 900.0

# ARGV: queue key prefix, job key prefix, workers-by-queue key pattern, finished registry key
# pattern, SayIt job record prefix, queued sample size, finished sample size, queue names...
# Returns, per queue: {queued audio seconds (of the sample), queue length, sample size, live
# workers, {started_at, ended_at, meta, sayit state} of its latest finished jobs}.
SNAPSHOT_SCRIPT = """
local function audio_seconds(meta)
  if not meta then return nil end
  local ok, decoded = pcall(cjson.decode, meta)
  if ok and type(decoded) == 'table' then return tonumber(decoded['audio_seconds']) end
  return nil
end
local out = {}
for i = 8, #ARGV do
  local name = ARGV[i]
  local queue_key = ARGV[1] .. name
  local length = redis.call('LLEN', queue_key)
  local ids = redis.call('LRANGE', queue_key, 0, tonumber(ARGV[6]) - 1)
  local queued = 0
  for _, id in ipairs(ids) do
    queued = queued + (audio_seconds(redis.call('HGET', ARGV[2] .. id, 'meta')) or 0)
  end
  local live = 0
  for _, worker_key in ipairs(redis.call('SMEMBERS', (string.gsub(ARGV[3], '%%s', name)))) do
    if redis.call('EXISTS', worker_key) == 1 then live = live + 1 end
  end
  local finished = {}
  local registry = string.gsub(ARGV[4], '{0}', name)
  for _, id in ipairs(redis.call('ZREVRANGE', registry, 0, tonumber(ARGV[7]) - 1)) do
    local job = redis.call('HMGET', ARGV[2] .. id, 'started_at', 'ended_at', 'meta')
    local state = redis.call('HGET', ARGV[5] .. id, 'state')
    table.insert(finished, {job[1] or '', job[2] or '', job[3] or '', state or ''})
  end
  table.insert(out, {tostring(queued), length, #ids, live, finished})
end
return out
"""


@dataclass
class QueueLoad:
    queued_seconds: float
    queued_jobs: int
    live_workers: int


@dataclass
class Snapshot:
    queues: dict[str, QueueLoad]
    real_time_factor: float
    measured: bool  # the factor comes from finished jobs, not the default
    taken: float = field(default_factory=time.monotonic)

    def ahead_of(self, queue: str) -> float:
        """Audio seconds a new job on `queue` waits behind (its queue and those before it)."""
        index = QUEUES.index(queue) if queue in QUEUES else len(QUEUES) - 1
        return sum(self.queues[q].queued_seconds for q in QUEUES[: index + 1] if q in self.queues)

    def workers(self, queue: str) -> int:
        load = self.queues.get(queue)
        return max(1, load.live_workers if load else 0)

    def wait_seconds(self, queue: str) -> float:
        return self.ahead_of(queue) * self.real_time_factor / self.workers(queue)


class Backpressure:
    def __init__(
        self,
        client: aioredis.Redis,
        keys: Keys,
        *,
        max_wait_seconds: float,
        default_rtf: float,
        queues: Sequence[str] = QUEUES,
    ) -> None:
        self._client: Any = client
        self._script = client.register_script(SNAPSHOT_SCRIPT)
        self._keys = keys
        self._max_wait = max_wait_seconds
        self._default_rtf = default_rtf
        self._queues = tuple(queues)
        self._snapshot: Snapshot | None = None

    async def admit(self, queue: str, audio_seconds: float) -> None:
        """Let a new job onto `queue`, or refuse it with RESOURCE_EXHAUSTED and a retry hint
        when the work already waiting there would take longer than the limit."""
        if self._max_wait <= 0:
            return
        snapshot = await self.snapshot()
        if snapshot is None:
            return
        wait = snapshot.wait_seconds(queue)
        if wait > self._max_wait:
            retry = min(MAX_RETRY_AFTER_SECONDS, max(1.0, wait - self._max_wait))
            log.warning(
                "queue_backpressure",
                queue=queue,
                estimated_wait_seconds=round(wait),
                queued_audio_seconds=round(snapshot.ahead_of(queue)),
                workers=snapshot.workers(queue),
                real_time_factor=round(snapshot.real_time_factor, 3),
            )
            workers = snapshot.workers(queue)
            raise ResourceExhausted(
                f"the transcription queue is full: about {_duration(wait)} of work "
                f"({_duration(snapshot.ahead_of(queue))} of audio for {workers} "
                f"worker{'s' if workers > 1 else ''}) is waiting, more than the "
                f"{_duration(self._max_wait)} allowed; retry in {retry:.0f} s",
                retry_after_seconds=retry,
                violations=[
                    QuotaViolation(f"queue:{queue}", f"estimated queue wait: {self._max_wait:g} s")
                ],
            )
        load = snapshot.queues.get(queue)
        if load is not None:
            load.queued_seconds += audio_seconds  # until the next snapshot sees it

    async def snapshot(self) -> Snapshot | None:
        """The cached snapshot, refreshed when older than SNAPSHOT_SECONDS; None when Redis
        cannot be read (work is admitted: the enqueue itself will fail if Redis is down)."""
        cached = self._snapshot
        if cached is not None and time.monotonic() - cached.taken < SNAPSHOT_SECONDS:
            return cached
        try:
            reply = await self._script(
                keys=[],
                args=[
                    Queue.redis_queue_namespace_prefix,
                    Job.redis_job_namespace_prefix,
                    WORKERS_BY_QUEUE_KEY,
                    FinishedJobRegistry.key_template,
                    self._keys.record(""),
                    SAMPLE_QUEUED,
                    SAMPLE_FINISHED,
                    *self._queues,
                ],
            )
        except redis.exceptions.RedisError as error:
            log.warning("backpressure_unavailable", error=str(error))
            return None
        self._snapshot = parse_snapshot(self._queues, reply, self._default_rtf)
        return self._snapshot


def parse_snapshot(queues: Sequence[str], reply: list[Any], default_rtf: float) -> Snapshot:
    loads: dict[str, QueueLoad] = {}
    factors: list[float] = []
    for name, (queued, length, sampled, live, finished) in zip(queues, reply, strict=True):
        seconds = float(queued)
        if int(sampled) and int(length) > int(sampled):
            seconds *= int(length) / int(sampled)
        loads[name] = QueueLoad(seconds, int(length), int(live))
        for started, ended, meta, state in finished:
            factor = _real_time_factor(started, ended, meta, state)
            if factor is not None:
                factors.append(factor)
    if factors:
        return Snapshot(loads, statistics.median(factors), measured=True)
    return Snapshot(loads, default_rtf, measured=False)


def _real_time_factor(started: Any, ended: Any, meta: Any, state: Any) -> float | None:
    """Wall time ÷ audio seconds of one finished RQ job, if it finished with a transcript."""
    if _text(state) not in ("", schema.SUCCEEDED):
        return None  # cancelled or failed early: says nothing about the speed
    try:
        audio_seconds = float(json.loads(_text(meta) or "{}").get("audio_seconds") or 0)
        wall = (_time(ended) - _time(started)).total_seconds()
    except (ValueError, TypeError, AttributeError):
        return None
    if audio_seconds < MIN_SAMPLE_AUDIO_SECONDS or wall <= 0:
        return None
    return wall / audio_seconds


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value or "")


def _time(value: Any) -> datetime:
    return datetime.strptime(_text(value), "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)


def _duration(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"
