"""python -m bench — `make bench`: SayIt against the raw engine, measured in one run.

    python -m bench [--quick] [--sections a,b] [--out FILE] [--threads N]

Runs each section (a module with `run(quick) -> list[Figure]`), prints one table and writes
bench/results/<YYYY-MM-DD>.json (or --out) with every figure and a description of the machine.
Ratios divide by the raw engine (faster-whisper in this process, same model, threads and
preset) measured in the same run. --quick: one or two repeats and shorter audio, for tests.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
import time
import traceback
from datetime import UTC, datetime
from pathlib import Path

from bench import machine, raw_engine, report
from bench.figures import Figure
from services.common import hugepages

# Outputs, not sources: git-ignored, and created by report.write on the first run.
RESULTS = Path(__file__).resolve().parent / "results"
# Section name -> module; in the order they run (cheap first).
SECTIONS = {
    "engine_baseline": "bench.engine_baseline",
    "mesh_overhead": "bench.mesh_overhead",
    "http_edge": "bench.http_edge",
    "throughput": "bench.throughput",
    "latency": "bench.latency",
    "memory": "bench.memory",
    "long_audio": "bench.long_audio",
    "batched": "bench.batched",
    "streaming": "bench.streaming",
}


def parse_sections(text: str) -> list[str]:
    """The sections named in "a,b" (all when empty), in run order; ValueError for unknown."""
    names = [s.strip() for s in text.split(",") if s.strip()]
    unknown = [s for s in names if s not in SECTIONS]
    if unknown:
        raise ValueError(f"unknown section(s) {', '.join(unknown)}; known: {', '.join(SECTIONS)}")
    return [s for s in SECTIONS if not names or s in names]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="1-2 repeats, shorter audio")
    parser.add_argument("--sections", default="", help=f"comma-separated: {','.join(SECTIONS)}")
    parser.add_argument("--out", type=Path, help="JSON file (default bench/results/<date>.json)")
    parser.add_argument("--threads", type=int, help="CPU threads of a decode (default: cores)")
    args = parser.parse_args(argv)
    try:
        sections = parse_sections(args.sections)
    except ValueError as error:
        parser.error(str(error))
    if args.threads:
        os.environ[raw_engine.THREADS_VAR] = str(args.threads)
    out = args.out or RESULTS / f"{datetime.now(UTC).date().isoformat()}.json"
    model = raw_engine.model()
    description = machine.describe(
        model=model.name,
        model_path=str(model.path),
        threads=raw_engine.threads(),
        preset=raw_engine.PRESET,
    )

    figures: list[Figure] = []
    errors: dict[str, str] = {}
    for name in sections:
        print(f"== {name} ...", file=sys.stderr, flush=True)
        started = time.monotonic()
        try:
            figures += importlib.import_module(SECTIONS[name]).run(args.quick)
        except Exception as error:  # one broken section must not lose the others' figures
            traceback.print_exc()
            errors[name] = f"{type(error).__name__}: {error}"
        print(f"== {name} took {time.monotonic() - started:.0f} s", file=sys.stderr, flush=True)
        # Written after every section, so a long run stopped half-way keeps what it measured.
        report.write(out, report.document(description, figures, args.quick, errors))

    print(report.table(figures))
    for name, message in errors.items():
        print(f"section {name} failed: {message}")
    print(f"written to {out}")
    return 1 if errors else 0


if __name__ == "__main__":
    # The raw engine lives in this process: give it the transcriber's huge pages too.
    hugepages.reexec_with_huge_pages("bench", os.environ)
    sys.exit(main())
