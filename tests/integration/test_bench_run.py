"""`make bench --quick` with every section: the runner starts real meshes, transcribers and the
real engine, prints the table and writes the JSON with every figure and the machine.
Figures are checked for presence and type only: never a speed threshold."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

from bench import engine_baseline, mesh_overhead, streaming
from bench.throughput import layouts
from devsupport.processes import ROOT

pytestmark = [pytest.mark.model, pytest.mark.redis]

MACHINE_KEYS = (
    "date",
    "cpu_model",
    "cores",
    "ram_gib",
    "os",
    "python",
    "faster_whisper",
    "ctranslate2",
    "model",
    "model_path",
    "threads",
    "preset",
    "git_commit",
)


def expected_figures() -> dict[str, set[str]]:
    """Every figure each section writes in --quick (the full run adds boundary errors and more
    batch sizes)."""
    return {
        "engine_baseline": {f"rtf_{clip}" for clip in engine_baseline.QUICK_CLIPS},
        "mesh_overhead": {f"transcribe_{clip}" for clip in mesh_overhead.QUICK_CLIPS},
        "http_edge": {
            "transcribe_added_ms",
            "transcribe_added_ms_outside_decoding",
            "transcribe_http_vs_grpc",
        },
        "throughput": {"mesh_8_callers"}
        | {f"raw_engine_{s}x{t}" for s, t in layouts(os.cpu_count() or 1)},
        "latency": {
            "first_event_short_ms",
            "first_segment_short",
            "first_event_queued_ms",
            "first_segment_queued_s",
            "largest_progress_gap_s",
            "largest_progress_gap",
        },
        "memory": {
            "transcriber_peak_rss",
            "transcriber_rss",
            "long_file_rss_growth",
            "long_file_peak_rss",
        },
        "long_audio": {
            "chunk_parallel_ratio",
            "chunk_parallel_engine_ratio",
            "chunk_parallel_vs_engine",
            "wall_1_worker",
            "wall_2_workers",
            "recovery_after_worker_sigkill",
            "recovery_after_transcriber_sigkill",
        },
        # The quick English file is cut, so its reference no longer fits: no error rate.
        "batched": {"throughput_en_batch8", "throughput_ko_batch8", "error_change_ko_batch8"},
        "streaming": {
            "endpoint_latency_median_s",
            "endpoint_latency_p95_s",
            "interim_lag_median_s",
            "final_error_change_ko",
            "final_error_change_en",
            "sustained_sessions",
            "long_session_rss_growth",
            "long_session_latency_change",
        }
        | {f"concurrent_{n}_endpoint_median_s" for n in streaming.QUICK_LEVELS},
    }


# Two runners side by side, each with half of the sections: most of a quick section's time is
# waiting (model loads, heartbeats, a killed worker's chunk), and the runner is what is tested.
GROUPS = (
    ("long_audio", "engine_baseline", "mesh_overhead", "http_edge", "streaming"),
    ("throughput", "latency", "memory", "batched"),
)


def test_quick_bench_writes_every_figure_and_the_machine(tmp_path: Path) -> None:
    assert {s for group in GROUPS for s in group} == set(expected_figures())
    runs = []
    for n, group in enumerate(GROUPS):
        out = tmp_path / f"bench-{n}.json"
        command = [sys.executable, "-m", "bench", "--quick", "--sections", ",".join(group)]
        runs.append(
            (
                out,
                subprocess.Popen(
                    [*command, "--out", str(out)],
                    cwd=ROOT,
                    text=True,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.PIPE,
                ),
            )
        )
    written: dict[str, set[str]] = {}
    for out, run in runs:
        stdout, stderr = run.communicate(timeout=900)
        assert run.returncode == 0, stdout + stderr[-3000:]
        doc = json.loads(out.read_text())
        assert doc["quick"] is True and doc["errors"] == {}
        for key in MACHINE_KEYS:
            assert doc["machine"][key] not in ("", None, 0), key
        for figure in doc["figures"]:
            written.setdefault(figure["section"], set()).add(figure["name"])
            name = figure["name"]
            assert isinstance(figure["value"], float | int) and math.isfinite(figure["value"]), name
            assert figure["unit"], name
            assert all(math.isfinite(s) for s in figure["samples"]), name
            if figure["unit"] == "ratio":
                assert figure["baseline"], name  # every ratio says what it divides by
            assert name in stdout  # the printed table
    assert written == expected_figures()
