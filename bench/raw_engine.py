"""The raw engine every bench figure is divided by: faster-whisper in this process through
`services.transcriber.engine.Engine`, with the model, threads and preset the services use.

The engine request is built by the transcriber's own `convert.engine_request`, so the baseline
decodes with exactly the preset, VAD and limits a service call with the same config gets. Its
time includes decoding the file's bytes to samples, as a caller of faster-whisper would do.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from functools import cache

from bench.figures import largest_gap
from devsupport import evalset
from devsupport.settings import BenchSettings
from sayit.common.v1 import transcription_pb2 as tpb
from services.common import audio
from services.transcriber import convert
from services.transcriber.engine import DecodedSegment, Engine
from services.transcriber.models import ResolvedModel, resolve_model

PRESET = "accurate"  # the services' default (PRESET_UNSPECIFIED)
THREADS_VAR = "SAYIT_BENCH_THREADS"


def threads() -> int:
    """The CPU threads of one decode, baseline and mesh alike (SAYIT_BENCH_THREADS, else every
    core)."""
    return BenchSettings.from_env(os.environ).bench_threads or os.cpu_count() or 1


@cache
def model() -> ResolvedModel:
    """The model the services would load from this environment (SAYIT_MODEL, default base)."""
    config = BenchSettings.from_env(os.environ).model_files
    return resolve_model(config.name, cache_dir=config.cache_dir, models_dir=config.models_dir)


def engine(cpu_threads: int, slots: int = 1) -> Engine:
    return Engine(model().path, cpu_threads=cpu_threads, slots=slots)


@dataclass(frozen=True)
class Run:
    seconds: float  # request to last segment
    first_segment_seconds: float  # request to first segment (inf when there was none)
    largest_gap_seconds: float  # longest wait between consecutive segments
    text: str


def transcribe(
    engine: Engine,
    content: bytes,
    language: str,
    filename: str = "",
    *,
    first_segment_only: bool = False,
) -> Run:
    """One call as the transcriber makes it: decode the bytes, then decode every segment (or
    stop at the first one)."""
    started = time.monotonic()
    request, _ = convert.engine_request(
        tpb.TranscriptionConfig(language_code=language), served_model=model().name
    )
    samples = audio.decode(content, filename)
    stamps: list[float] = []
    texts: list[str] = []
    items = engine.transcribe(samples, request)
    for item in items:
        if isinstance(item, DecodedSegment):
            stamps.append(time.monotonic())
            texts.append(item.text)
            if first_segment_only:
                break
    close = getattr(items, "close", None)  # stop decoding now, not at garbage collection
    if close is not None:
        close()
    ended = time.monotonic()
    return Run(
        seconds=ended - started,
        first_segment_seconds=(stamps[0] - started) if stamps else float("inf"),
        largest_gap_seconds=largest_gap([started, *stamps, ended]),
        text=" ".join(texts),
    )


def transcribe_clip(engine: Engine, clip: evalset.Clip) -> Run:
    return transcribe(engine, clip.read(), clip.language, clip.path.name)
