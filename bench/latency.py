"""Latency as a caller sees it: time from request to the first event and to the first segment
(TranscribeWithProgress, short on the direct path and long on the queue), and the largest gap
between progress events of a long job (CreateJob + WatchJob), beside the raw engine.

Ratios divide by the raw engine on the same audio with the same threads: its time to the first
decoded segment, and its longest wait between consecutive segments. The mesh has one direct
and one queue transcriber, each of 1 slot x `threads()` threads; one call at a time.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

from bench import bench_mesh, raw_engine
from bench.figures import Figure, largest_gap, median
from bench.report import ratio
from devsupport import audio, evalset
from sayit.common.v1 import audio_pb2, transcription_pb2
from sayit.speech.v1 import speech_service_pb2 as pb
from sayit.speech.v1 import speech_service_pb2_grpc as pb_grpc

SECTION = "latency"
SHORT = "en_jfk"
LONG = "en_long_ljspeech_LJ001"  # 231 s
QUEUED_SECONDS = 40.0  # > the 30 s direct threshold: TranscribeWithProgress queues it
QUICK_LONG_SECONDS = 40.0


@dataclass(frozen=True)
class Watched:
    first_event: float  # seconds from the request
    first_segment: float
    progress: list[float]  # arrival of each progress event, seconds from the request
    ended: float


def _watch(replies: object, started: float, stop_at_first_segment: bool = False) -> Watched:
    first_event = first_segment = ended = float("nan")
    progress: list[float] = []
    for reply in replies:  # type: ignore[attr-defined]
        now = time.monotonic() - started
        kind = reply.event.WhichOneof("kind")
        if math.isnan(first_event):
            first_event = now
        if kind == "progress":
            progress.append(now)
        elif kind == "segment" and math.isnan(first_segment):
            first_segment = now
            if stop_at_first_segment:
                replies.cancel()  # type: ignore[attr-defined]
                return Watched(first_event, first_segment, progress, now)
        elif kind in ("completed", "failed", "cancelled"):
            if kind != "completed":
                raise RuntimeError(f"the job ended {kind}: {reply.event}")
            ended = now
    return Watched(first_event, first_segment, progress, ended)


def _config(language: str) -> transcription_pb2.TranscriptionConfig:
    return transcription_pb2.TranscriptionConfig(language_code=language)


def _with_progress(
    stub: pb_grpc.SpeechServiceStub, content: bytes, language: str, cancel: bool
) -> Watched:
    request = pb.TranscribeWithProgressRequest(
        audio=audio_pb2.Audio(content=content), config=_config(language)
    )
    started = time.monotonic()
    replies = stub.TranscribeWithProgress(request, timeout=1800)
    try:
        return _watch(replies, started, stop_at_first_segment=cancel)
    finally:
        replies.cancel()


def _job(stub: pb_grpc.SpeechServiceStub, content: bytes, language: str) -> Watched:
    started = time.monotonic()
    job = stub.CreateJob(
        pb.CreateJobRequest(audio=audio_pb2.Audio(content=content), config=_config(language)),
        timeout=120,
    ).job
    return _watch(stub.WatchJob(pb.WatchJobRequest(name=job.name), timeout=3600), started)


def _cancel_all(stub: pb_grpc.SpeechServiceStub) -> None:
    """Cancel what a stopped stream left queued or running, so the next call waits for nothing."""
    for job in stub.ListJobs(pb.ListJobsRequest(page_size=100), timeout=30).jobs:
        if job.state in (1, 2):  # QUEUED, RUNNING
            stub.CancelJob(pb.CancelJobRequest(name=job.name), timeout=30)


def _ms(seconds: float) -> float:
    return round(seconds * 1000, 1)


def run(quick: bool) -> list[Figure]:
    repeats = 1 if quick else 5
    threads = raw_engine.threads()
    short = evalset.clip(SHORT)
    queued, _, queued_seconds = audio.korean_long(QUEUED_SECONDS)
    if quick:
        long_content, _, long_seconds = audio.korean_long(QUICK_LONG_SECONDS, start=5)
        long_language, long_name = "ko", f"{long_seconds:.0f} s of joined Korean clips"
    else:
        clip = evalset.clip(LONG)
        long_content, long_seconds = clip.read(), clip.duration_seconds
        long_language, long_name = "en", f"{LONG} ({long_seconds:.0f} s)"

    engine = raw_engine.engine(threads)
    raw_engine.transcribe_clip(engine, short)  # warm-up
    raw_first = [
        raw_engine.transcribe_clip(engine, short).first_segment_seconds for _ in range(repeats)
    ]
    raw_long = raw_engine.transcribe(engine, long_content, long_language)
    del engine

    with bench_mesh.running(direct_slots=1, direct_threads=threads, queue_threads=threads) as mesh:
        stub = bench_mesh.stub(mesh)
        _with_progress(stub, short.read(), short.language, cancel=False)  # warm-up
        shorts = [
            _with_progress(stub, short.read(), short.language, cancel=False) for _ in range(repeats)
        ]
        queued_runs = []
        for _ in range(repeats):
            queued_runs.append(_with_progress(stub, queued, "ko", cancel=True))
            _cancel_all(stub)
        long_run = _job(stub, long_content, long_language)

    progress_gap = largest_gap([*long_run.progress, long_run.ended])
    short_first_segment = median([w.first_segment for w in shorts])
    return [
        Figure(
            SECTION,
            "first_event_short_ms",
            _ms(median([w.first_event for w in shorts])),
            "ms",
            samples=tuple(_ms(w.first_event) for w in shorts),
            note=f"TranscribeWithProgress, {SHORT} ({short.duration_seconds:.0f} s, direct): "
            "request to the first event (accepted)",
        ),
        Figure(
            SECTION,
            "first_segment_short",
            round(ratio(short_first_segment, median(raw_first)), 3),
            "ratio",
            baseline="raw engine: call to its first segment, same clip",
            samples=tuple(round(w.first_segment, 3) for w in shorts),
            note=f"TranscribeWithProgress, {SHORT}: request to the first segment event "
            f"{short_first_segment:.2f} s, engine {median(raw_first):.2f} s",
        ),
        Figure(
            SECTION,
            "first_event_queued_ms",
            _ms(median([w.first_event for w in queued_runs])),
            "ms",
            samples=tuple(_ms(w.first_event) for w in queued_runs),
            note=f"TranscribeWithProgress, {queued_seconds:.0f} s of Korean (queued): request "
            "to the first event (accepted)",
        ),
        Figure(
            SECTION,
            "first_segment_queued_s",
            round(median([w.first_segment for w in queued_runs]), 3),
            "s",
            samples=tuple(round(w.first_segment, 3) for w in queued_runs),
            note="the same queued call: request to its first segment event (queue pick-up, "
            "chunk planning, decoding the first window)",
        ),
        Figure(
            SECTION,
            "largest_progress_gap_s",
            round(progress_gap, 2),
            "s",
            samples=tuple(round(t, 2) for t in long_run.progress),
            note=f"CreateJob + WatchJob, {long_name}: longest wait between progress events "
            f"(first progress to completed; samples: arrival times); job took "
            f"{long_run.ended:.1f} s",
        ),
        Figure(
            SECTION,
            "largest_progress_gap",
            round(ratio(progress_gap, raw_long.largest_gap_seconds), 3),
            "ratio",
            baseline="raw engine: longest wait between its segments on the same audio",
            note=f"engine gap {raw_long.largest_gap_seconds:.2f} s, engine took "
            f"{raw_long.seconds:.1f} s",
        ),
    ]
