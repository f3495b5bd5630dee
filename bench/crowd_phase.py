"""One measured phase of `make crowd`: a steady stream of short Transcribe calls on new audio,
while the mesh's Redis connections and memory are sampled.

Calls start on a fixed schedule (open loop: a slow answer does not slow the next call), spread
round-robin over the callers' API keys. A refusal carrying RetryInfo is counted apart and not
retried (the schedule goes on); the latency figures are of OK calls.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from dataclasses import dataclass, field

import grpc

from bench import mesh_probe
from bench.crowd_watchers import refusal_kind
from bench.retrying import RETRYABLE, retry_delay
from bench.unique_audio import UniqueAudio
from sayit.common.v1 import audio_pb2
from sayit.common.v1 import transcription_pb2 as tpb
from sayit.speech.v1 import speech_service_pb2 as pb
from sayit.speech.v1 import speech_service_pb2_grpc as pb_grpc

SAMPLE_EVERY_SECONDS = 5.0
Caller = tuple[pb_grpc.SpeechServiceStub, list[tuple[str, str]]]


@dataclass
class PhaseResult:
    latencies: list[float] = field(default_factory=list)
    codes: Counter[str] = field(default_factory=Counter)  # OK, "refused" (RetryInfo), CODE
    error_kinds: Counter[str] = field(default_factory=Counter)  # errors by code and message
    cache_hits: int = 0
    job_names: list[set[str]] = field(default_factory=list)  # per caller
    redis_clients_peak: int = 0
    redis_by_service_peak: Counter[str] = field(default_factory=Counter)
    redis_by_name_peak: Counter[str] = field(default_factory=Counter)
    redis_error: str = ""
    rss_peak_mib: dict[str, float] = field(default_factory=dict)

    @property
    def errors(self) -> int:
        return sum(n for code, n in self.codes.items() if code not in ("OK", "refused"))


async def _one_call(
    caller: int, callers: list[Caller], audio: UniqueAudio, index: int, result: PhaseResult
) -> None:
    stub, metadata = callers[caller]
    variant = audio.variant(index)
    started = time.monotonic()
    try:
        answer = await stub.Transcribe(
            pb.TranscribeRequest(
                audio=audio_pb2.Audio(content=variant.content, filename=variant.filename),
                config=tpb.TranscriptionConfig(language_code=variant.language),
            ),
            metadata=metadata,
            timeout=300,
        )
    except grpc.aio.AioRpcError as error:
        refused = error.code() in RETRYABLE and retry_delay(error) is not None
        result.codes["refused" if refused else error.code().name] += 1
        if not refused:
            result.error_kinds[refusal_kind(error.code(), error.details() or "")] += 1
        return
    result.latencies.append(time.monotonic() - started)
    result.codes["OK"] += 1
    result.cache_hits += answer.HasField("transcript") and answer.transcript.from_cache
    result.job_names[caller].add(answer.job_name)


def sample(result: PhaseResult, pids: dict[str, int]) -> None:
    """Keep the peaks of Redis connections and of each service's memory (blocking: /proc and
    Redis; run in a thread)."""
    for name, mib in mesh_probe.memory_by_service().items():
        result.rss_peak_mib[name] = max(result.rss_peak_mib.get(name, 0.0), mib)
    try:
        seen = mesh_probe.redis_connections(mesh_probe.redis_url(), pids)
    except Exception as error:  # report why, keep measuring latency
        result.redis_error = f"{type(error).__name__}: {error}"
        return
    if seen.connected_clients >= result.redis_clients_peak:
        result.redis_clients_peak = seen.connected_clients
        result.redis_by_service_peak = seen.by_service
        result.redis_by_name_peak = seen.by_name


async def run_phase(
    callers: list[Caller], audio: UniqueAudio, rate: float, seconds: float
) -> PhaseResult:
    result = PhaseResult(job_names=[set() for _ in callers])
    pids = mesh_probe.service_pids()
    calls: list[asyncio.Task[None]] = []
    started = time.monotonic()
    next_sample = started
    count = 0
    while time.monotonic() - started < seconds:
        now = time.monotonic()
        if now >= next_sample:
            await asyncio.to_thread(sample, result, pids)
            next_sample = now + SAMPLE_EVERY_SECONDS
        due = started + count / rate
        if time.monotonic() >= due:
            calls.append(
                asyncio.create_task(_one_call(count % len(callers), callers, audio, count, result))
            )
            count += 1
        await asyncio.sleep(min(0.05, max(0.0, due - time.monotonic())))
    while not all(call.done() for call in calls):
        if time.monotonic() >= next_sample:
            await asyncio.to_thread(sample, result, pids)
            next_sample = time.monotonic() + SAMPLE_EVERY_SECONDS
        await asyncio.sleep(0.2)
    await asyncio.to_thread(sample, result, pids)
    return result
