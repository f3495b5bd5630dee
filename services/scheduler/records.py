"""How jobs live in Redis: keys, the job record hash, event encoding and the append script.

Shared by the scheduler (redis.asyncio) and the queue worker (blocking redis), so both write a
job's record and events the same way. Every change to a job goes through one Lua script that
checks the job's state, updates the record and appends the event atomically; that is what makes
sequences strictly increasing, progress never go backwards, and the terminal event unique even
when the scheduler and several workers write at once.

A queued job is transcribed in chunks (one RQ job each). Its chunk hash holds the plan (each
chunk's offset and duration), each chunk's audio seconds done, whether it finished, its segment
watermark and its transcript. A chunk's progress is summed into the job's progress inside the
script, which then writes the progress event itself (a compact `p` entry), so concurrent chunks
never publish a stale total.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from google.protobuf.timestamp_pb2 import Timestamp

from sayit.common.v1 import event_pb2, job_pb2, transcription_pb2
from sayit.transcriber.v1 import transcriber_service_pb2 as transcriber_pb2
from services.common.names import job_name

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

_STATES = {
    QUEUED: job_pb2.JOB_STATE_QUEUED,
    RUNNING: job_pb2.JOB_STATE_RUNNING,
    SUCCEEDED: job_pb2.JOB_STATE_SUCCEEDED,
    FAILED: job_pb2.JOB_STATE_FAILED,
    CANCELLED: job_pb2.JOB_STATE_CANCELLED,
}
_ROUTES = {DIRECT: job_pb2.ROUTING_DIRECT, QUEUED_ROUTE: job_pb2.ROUTING_QUEUED}
TERMINAL_EVENTS = ("completed", "failed", "cancelled")

# A record hash as redis-py returns it (bytes keys and values; its types are looser).
RawRecord = Mapping[Any, Any]


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

    def scheduler(self, instance: str) -> str:
        """A scheduler instance's heartbeat; its direct jobs die with it."""
        return f"{self.prefix}:scheduler:{instance}"


def now_ms() -> int:
    return int(time.time() * 1000)


# KEYS[1] record hash, KEYS[2] event stream, KEYS[3] chunk hash.
# ARGV[1] the event payload ("" = change the record only), ARGV[2] a JSON object:
#   allow:     states in which the change applies (otherwise nothing happens)
#   unplanned: apply only while the job has no chunk plan yet
#   set:       record fields to set
#   progress:  a fraction that must not be below the recorded one (else nothing happens)
#   watermark: [field, start, end]: drop a segment that starts before the chunk hash field's
#              value, so a re-run chunk never repeats segments already sent
#   plan:      [[offset, duration], ...]: the chunks, written to the chunk hash
#   chunk:     {index, done, finished, ms}: a chunk's audio seconds done (never backwards) or
#              its end; the job's done seconds, fraction and chunks_done follow, and the script
#              appends the progress event itself (ARGV[1] unused)
#   ttl:       seconds to keep the record, stream and chunk hash from now
# ARGV[3..] field, value pairs of binary fields to set: "r:<field>" in the record (a transcript,
# an error), "c:<field>" in the chunk hash (a chunk's transcript).
# Returns {sequence of the appended event (0 if none), state after the call, flags}: flag 1 = the
# change passed its checks and was applied, flag 2 = every chunk of the job has finished (chunk
# changes only); {-1, "", 0} if the job does not exist.
APPEND_SCRIPT = """
local state = redis.call('HGET', KEYS[1], 'state')
if not state then return {-1, '', 0} end
local change = cjson.decode(ARGV[2])
local allowed = false
for _, s in ipairs(change.allow) do if s == state then allowed = true end end
if not allowed then return {0, state, 0} end
if change.unplanned and redis.call('HGET', KEYS[1], 'planned') == '1' then
  return {0, state, 0}
end
if change.progress then
  local current = tonumber(redis.call('HGET', KEYS[1], 'fraction') or '0')
  if change.progress < current then return {0, state, 0} end
  redis.call('HSET', KEYS[1], 'fraction', tostring(change.progress))
end
if change.watermark then
  local mark = tonumber(redis.call('HGET', KEYS[3], change.watermark[1]) or '-1')
  if change.watermark[2] < mark - 0.01 then return {0, state, 0} end
  redis.call('HSET', KEYS[3], change.watermark[1], tostring(change.watermark[3]))
end
local payload, field, complete = ARGV[1], 'e', 0
if change.chunk then
  local c = change.chunk
  local i = tostring(c.index)
  local length = tonumber(redis.call('HGET', KEYS[3], 'dur:' .. i))
  if not length then return {0, state, 0} end
  local planned = tonumber(redis.call('HGET', KEYS[1], 'chunks_total') or '0')
  local finished = tonumber(redis.call('HGET', KEYS[1], 'chunks_done') or '0')
  if redis.call('HEXISTS', KEYS[3], 'fin:' .. i) == 1 then
    if finished >= planned then complete = 2 end
    return {0, state, complete}
  end
  local before = tonumber(redis.call('HGET', KEYS[3], 'done:' .. i) or '0')
  local after = math.min(math.max(before, c.done), length)
  if c.finished then after = length end
  if after <= before and not c.finished then return {0, state, 0} end
  redis.call('HSET', KEYS[3], 'done:' .. i, tostring(after))
  local done = tonumber(redis.call('HINCRBYFLOAT', KEYS[1], 'done_s', tostring(after - before)))
  if c.finished then
    redis.call('HSET', KEYS[3], 'fin:' .. i, '1')
    finished = redis.call('HINCRBY', KEYS[1], 'chunks_done', 1)
    if finished >= planned then complete = 2 end
  end
  local total = tonumber(redis.call('HGET', KEYS[1], 'duration') or '0')
  local fraction = 1
  if total > 0 then fraction = math.min(1, done / total) end
  local current = tonumber(redis.call('HGET', KEYS[1], 'fraction') or '0')
  if fraction < current then fraction = current end
  redis.call('HSET', KEYS[1], 'fraction', tostring(fraction))
  payload, field = cjson.encode({ms = c.ms, d = done, t = total, f = fraction,
                                 cd = finished, ct = planned}), 'p'
end
if change.plan then
  for n, piece in ipairs(change.plan) do
    local i = tostring(n - 1)
    redis.call('HSET', KEYS[3], 'off:' .. i, tostring(piece[1]), 'dur:' .. i, tostring(piece[2]))
  end
end
for k, v in pairs(change.set or {}) do redis.call('HSET', KEYS[1], k, tostring(v)) end
for i = 3, #ARGV, 2 do
  local target = KEYS[1]
  if string.sub(ARGV[i], 1, 2) == 'c:' then target = KEYS[3] end
  redis.call('HSET', target, string.sub(ARGV[i], 3), ARGV[i + 1])
end
local seq = 0
if payload ~= '' then
  seq = redis.call('HINCRBY', KEYS[1], 'seq', 1)
  redis.call('XADD', KEYS[2], '0-' .. seq, field, payload)
end
if change.ttl then
  redis.call('EXPIRE', KEYS[1], change.ttl)
  redis.call('EXPIRE', KEYS[2], change.ttl)
  redis.call('EXPIRE', KEYS[3], change.ttl)
end
return {seq, redis.call('HGET', KEYS[1], 'state'), 1 + complete}
"""


@dataclass
class Change:
    """One atomic change to a job: the event to append and the record update it implies."""

    allow: tuple[str, ...]
    event: event_pb2.JobEvent | None = None
    set: dict[str, str | int | float] = field(default_factory=dict)
    progress: float | None = None
    watermark: tuple[str, float, float] | None = None
    # Binary record fields (transcript, error) are set outside the JSON argument.
    binary: dict[str, bytes] = field(default_factory=dict)
    # Binary chunk hash fields (a chunk's transcript).
    chunk_binary: dict[str, bytes] = field(default_factory=dict)
    unplanned: bool = False
    plan: list[tuple[float, float]] | None = None
    chunk: dict[str, int | float | bool] | None = None

    def script_args(self, ttl_seconds: int) -> list[bytes | str]:
        payload = self.event.SerializeToString() if self.event is not None else b""
        spec: dict[str, object] = {"allow": list(self.allow), "set": self.set, "ttl": ttl_seconds}
        if self.progress is not None:
            spec["progress"] = self.progress
        if self.watermark is not None:
            spec["watermark"] = list(self.watermark)
        if self.unplanned:
            spec["unplanned"] = True
        if self.plan is not None:
            spec["plan"] = [list(piece) for piece in self.plan]
        if self.chunk is not None:
            spec["chunk"] = self.chunk
        binary: list[bytes | str] = []
        for prefix, fields in (("r:", self.binary), ("c:", self.chunk_binary)):
            for name, value in fields.items():
                binary += [prefix + name, value]
        return [payload, json.dumps(spec), *binary]


def _timestamp(ms: int | None = None) -> Timestamp:
    stamp = Timestamp()
    stamp.FromMilliseconds(ms if ms is not None else now_ms())
    return stamp


def event(job_id: str, **kind: object) -> event_pb2.JobEvent:
    """A JobEvent stamped now; its sequence is set when read back from the stream."""
    return event_pb2.JobEvent(
        name=job_name(job_id),
        job_id=job_id,
        time=_timestamp(),
        **kind,  # type: ignore[arg-type]
    )


def progress_message(
    done: float, total: float, chunks_done: int = 0, chunks_total: int = 1
) -> job_pb2.JobProgress:
    fraction = 1.0 if total <= 0 else min(1.0, max(0.0, done / total))
    return job_pb2.JobProgress(
        fraction=fraction,
        audio_seconds_done=min(done, total),
        audio_seconds_total=total,
        chunks_done=chunks_done,
        chunks_total=chunks_total,
    )


def progress_change(job_id: str, progress: job_pb2.JobProgress) -> Change:
    return Change(
        allow=(RUNNING,),
        event=event(job_id, progress=progress),
        progress=round(progress.fraction, 6),
        set={
            "done_s": progress.audio_seconds_done,
            "chunks_done": progress.chunks_done,
            "chunks_total": progress.chunks_total,
        },
    )


def start_change(job_id: str, total_seconds: float, chunks_total: int = 1) -> Change:
    """QUEUED -> RUNNING (a worker picked the job's first chunk up); a no-op for a cancelled
    job or one another chunk started already."""
    return Change(
        allow=(QUEUED,),
        event=event(job_id, progress=progress_message(0.0, total_seconds, 0, chunks_total)),
        set={"state": RUNNING, "started_ms": now_ms()},
    )


def plan_change(pieces: list[tuple[float, float]]) -> Change:
    """Record the chunk plan ([offset, duration] each) of a queued job, once."""
    return Change(
        allow=(QUEUED,),
        unplanned=True,
        plan=pieces,
        set={"chunks_total": len(pieces), "planned": 1, "planned_ms": now_ms()},
    )


def claim_planning_change(owner: str) -> Change:
    """Make `owner` (a scheduler instance) the one planning a job not yet planned."""
    return Change(allow=(QUEUED,), unplanned=True, set={"owner": owner})


def chunk_progress_change(index: int, done_seconds: float) -> Change:
    """A chunk has `done_seconds` of its audio transcribed (the job's progress follows)."""
    return Change(allow=(RUNNING,), chunk={"index": index, "done": done_seconds, "ms": now_ms()})


def chunk_finished_change(index: int, transcript: transcription_pb2.Transcript) -> Change:
    """A chunk's transcript (already on the whole file's clock) is in; once per chunk."""
    return Change(
        allow=(RUNNING,),
        chunk={"index": index, "done": 0.0, "finished": True, "ms": now_ms()},
        chunk_binary={f"t:{index}": transcript.SerializeToString()},
    )


def segment_change(job_id: str, segment: transcription_pb2.Segment, piece: int = 0) -> Change:
    return Change(
        allow=(RUNNING,),
        event=event(job_id, segment=segment),
        watermark=(f"wm:{piece}", segment.start_seconds, segment.end_seconds),
    )


def transcriber_change(
    job_id: str, response: transcriber_pb2.TranscribeStreamResponse, total_seconds: float
) -> Change:
    """The job change for one message streamed by a transcriber."""
    kind = response.WhichOneof("event")
    if kind == "progress":
        done = response.progress.audio_seconds_done
        return progress_change(
            job_id, progress_message(done, total_seconds, int(done >= total_seconds))
        )
    if kind == "segment":
        return segment_change(job_id, response.segment)
    return completed_change(job_id, response.transcript)


def completed_change(
    job_id: str, transcript: transcription_pb2.Transcript, allow: tuple[str, ...] = ACTIVE
) -> Change:
    return Change(
        allow=allow,
        event=event(job_id, completed=event_pb2.JobCompleted(transcript=transcript)),
        set={
            "state": SUCCEEDED,
            "ended_ms": now_ms(),
            "fraction": 1.0,
            "done_s": transcript.audio_duration_seconds,
        },
        binary={"transcript": transcript.SerializeToString()},
    )


def failed_change(job_id: str, code: int, message: str) -> Change:
    error = job_pb2.JobError(code=code, message=message)
    return Change(
        allow=ACTIVE,
        event=event(job_id, failed=event_pb2.JobFailed(error=error)),
        set={"state": FAILED, "ended_ms": now_ms()},
        binary={"error": error.SerializeToString()},
    )


def cancelled_change(job_id: str, reason: str) -> Change:
    return Change(
        allow=ACTIVE,
        event=event(job_id, cancelled=event_pb2.JobCancelled(reason=reason)),
        set={"state": CANCELLED, "ended_ms": now_ms()},
    )


def new_record(
    *,
    tenant: str,
    state: str,
    routing: str,
    queue: str,
    duration: float,
    config: transcription_pb2.TranscriptionConfig,
    filename: str,
    owner: str = "",
    chunks_total: int = 1,
    fingerprint: str = "",
) -> dict[str, bytes | str | int | float]:
    created = now_ms()
    record: dict[str, bytes | str | int | float] = {
        "tenant": tenant,
        "state": state,
        "routing": routing,
        "queue": queue,
        "duration": duration,
        "created_ms": created,
        "fraction": 0.0,
        "done_s": 0.0,
        "chunks_done": 0,
        "chunks_total": chunks_total,
        "seq": 0,
        "config": config.SerializeToString(),
        "filename": filename[:255],
        "owner": owner,
        # Audio + effective config + model, for the result cache and in-flight sharing.
        "fingerprint": fingerprint,
    }
    if state == RUNNING:
        record["started_ms"] = created
    return record


def text(record: RawRecord, key: str, default: str = "") -> str:
    value = record.get(key.encode())
    return value.decode() if value is not None else default


def number(record: RawRecord, key: str) -> float:
    value = record.get(key.encode())
    return float(value) if value else 0.0


def state_of(record: RawRecord) -> str:
    return text(record, "state")


def tenant_of(record: RawRecord) -> str:
    return text(record, "tenant")


def job_message(job_id: str, record: RawRecord) -> job_pb2.TranscriptionJob:
    """The public TranscriptionJob for a record hash (as read with HGETALL)."""
    total = number(record, "duration")
    job = job_pb2.TranscriptionJob(
        name=job_name(job_id),
        state=_STATES.get(state_of(record), job_pb2.JOB_STATE_UNSPECIFIED),
        routing=_ROUTES.get(text(record, "routing"), job_pb2.ROUTING_UNSPECIFIED),
        progress=job_pb2.JobProgress(
            fraction=number(record, "fraction"),
            audio_seconds_done=number(record, "done_s"),
            audio_seconds_total=total,
            chunks_done=int(number(record, "chunks_done")),
            chunks_total=int(number(record, "chunks_total")),
        ),
        audio_duration_seconds=total,
        filename=text(record, "filename"),
    )
    for key, target in (
        ("created_ms", job.create_time),
        ("started_ms", job.start_time),
        ("ended_ms", job.end_time),
    ):
        if record.get(key.encode()):
            target.FromMilliseconds(int(number(record, key)))
    if record.get(b"config"):
        job.config.ParseFromString(record[b"config"])
    if record.get(b"transcript"):
        job.transcript.ParseFromString(record[b"transcript"])
    elif record.get(b"error"):
        job.error.ParseFromString(record[b"error"])
    return job


def parse_event(job_id: str, stream_id: bytes | str, fields: RawRecord) -> event_pb2.JobEvent:
    """A JobEvent read back from the stream; its sequence is the stream entry's id. Progress
    written by the append script itself comes as a compact JSON `p` entry."""
    if b"e" in fields:
        message = event_pb2.JobEvent.FromString(fields[b"e"])
    else:
        p = json.loads(fields[b"p"])
        message = event_pb2.JobEvent(
            job_id=job_id,
            time=_timestamp(int(p["ms"])),
            progress=job_pb2.JobProgress(
                fraction=float(p["f"]),
                audio_seconds_done=min(float(p["d"]), float(p["t"])),
                audio_seconds_total=float(p["t"]),
                chunks_done=int(p["cd"]),
                chunks_total=int(p["ct"]),
            ),
        )
    raw = stream_id.decode() if isinstance(stream_id, bytes) else stream_id
    message.sequence = int(raw.split("-", 1)[1])
    # Set here too: `p` entries carry no name, nor do events appended before JobEvent had one.
    message.name = job_name(job_id)
    return message


def stream_id(sequence: int) -> str:
    return f"0-{sequence}"


def is_terminal(message: event_pb2.JobEvent) -> bool:
    return message.WhichOneof("kind") in TERMINAL_EVENTS
