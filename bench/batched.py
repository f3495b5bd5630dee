"""Batched decoding of long audio: throughput and accuracy against sequential decoding.

    python -m bench.batched [--quick] [--batch-sizes 4,8,16]

One in-process engine (2 CPU threads, the accurate preset of each language) transcribes the same
long file sequentially (the service's default: each speech region its own window, see
services/transcriber/regions.py) and then batched (faster-whisper's BatchedInferencePipeline in
its own mode: VAD regions of up to 30 s, no timestamps inside a region) at each batch size.
Figures: throughput of batched ÷ sequential (goal >= 1.5) and the change in error rate in points
(goal: within 0.5), for the ~4-minute English LJ001 clip and a Korean file joined from the
shared clips. The transcriber's SAYIT_BATCH_SIZE default comes from these figures.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import dataclass

from bench.figures import Figure, median
from devsupport import audio, evalset, scoring
from devsupport.settings import BenchSettings
from services.common import audio as audio_io
from services.transcriber import presets
from services.transcriber.engine import DecodedSegment, Engine, EngineRequest
from services.transcriber.models import resolve_model

SECTION = "batched"
THREADS = 2
QUICK_SECONDS = 30  # of each language in --quick (the test suite's run)


@dataclass(frozen=True)
class LongFile:
    language: str
    samples: audio_io.Samples
    reference: str

    @property
    def seconds(self) -> float:
        return len(self.samples) / audio_io.SAMPLE_RATE


def long_files(quick: bool) -> list[LongFile]:
    english = evalset.clip("en_long_ljspeech_LJ001")
    en = audio_io.decode(english.read(), english.path.name)
    if quick:
        en = en[: QUICK_SECONDS * audio_io.SAMPLE_RATE]  # the reference no longer fits: no rates
    korean, korean_reference, _ = audio.korean_long(QUICK_SECONDS if quick else 180.0)
    return [
        LongFile("en", en, "" if quick else english.reference),
        LongFile("ko", audio_io.decode(korean), korean_reference),
    ]


def _engine(batch_size: int) -> Engine:
    import os

    config = BenchSettings.from_env(os.environ).model_files
    model = resolve_model(config.name, cache_dir=config.cache_dir, models_dir=config.models_dir)
    return Engine(model.path, cpu_threads=THREADS, slots=1, batch_size=batch_size)


def transcribe(engine: Engine, file: LongFile, batched: bool) -> tuple[str, float]:
    request = EngineRequest(
        language=file.language,
        task="transcribe",
        preset=presets.lookup(file.language, presets.ACCURATE),
        word_timestamps=False,
        vad_filter=True,
        batched=batched,
    )
    started = time.monotonic()
    texts = [
        i.text for i in engine.transcribe(file.samples, request) if isinstance(i, DecodedSegment)
    ]
    return " ".join(t for t in texts if t), time.monotonic() - started


def run(quick: bool, batch_sizes: tuple[int, ...] | None = None) -> list[Figure]:
    sizes = batch_sizes or ((8,) if quick else (4, 8, 16))
    repeats = 1 if quick else 3
    figures = []
    engines = {size: _engine(size) for size in sizes}
    for file in long_files(quick):
        sequential_engine = engines[sizes[0]]
        transcribe(sequential_engine, file, batched=False)  # warm up caches and the VAD
        runs = [transcribe(sequential_engine, file, batched=False) for _ in range(repeats)]
        seq_seconds = median([r[1] for r in runs])
        seq_rate = scoring.score(file.reference, runs[0][0], file.language).rate
        for size in sizes:
            batched_runs = [transcribe(engines[size], file, batched=True) for _ in range(repeats)]
            seconds = median([r[1] for r in batched_runs])
            label = f"{file.language} {file.seconds:.0f} s, batch {size}"
            figures.append(
                Figure(
                    SECTION,
                    f"throughput_{file.language}_batch{size}",
                    round(seq_seconds / seconds, 3),
                    "ratio",
                    baseline="sequential decoding, same engine and threads",
                    goal=">= 1.5",
                    samples=tuple(round(seq_seconds / r[1], 3) for r in batched_runs),
                    note=f"batched ÷ sequential throughput, {label}",
                )
            )
            if file.reference:
                rate = scoring.score(file.reference, batched_runs[0][0], file.language).rate
                figures.append(
                    Figure(
                        SECTION,
                        f"error_change_{file.language}_batch{size}",
                        round((rate - seq_rate) * 100, 2),
                        "points",
                        baseline=f"sequential {seq_rate * 100:.2f}%",
                        goal="<= 0.5",
                        note=f"error rate batched {rate * 100:.2f}% minus sequential, {label}",
                    )
                )
    return figures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.batched", description=__doc__)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--batch-sizes", default="")
    args = parser.parse_args(argv)
    sizes = tuple(int(s) for s in args.batch_sizes.split(",") if s) or None
    figures = run(args.quick, sizes)
    for f in figures:
        print(f"{f.name:60s} {f.value:8.3f} {f.unit:7s} goal {f.goal}  {f.note}")
    print(json.dumps([f.as_dict() for f in figures], ensure_ascii=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
