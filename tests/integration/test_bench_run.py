"""`make bench` in quick mode on its cheapest mesh section: the runner starts a real mesh and the
real engine, prints the table and writes the JSON with every figure and the machine. Figures are
checked for presence and type only: never a speed threshold."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

from bench import mesh_overhead
from tests.support.processes import ROOT

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


def test_quick_bench_writes_every_figure_and_the_machine(tmp_path: Path) -> None:
    out = tmp_path / "bench.json"
    done = subprocess.run(
        [sys.executable, "-m", "bench", "--quick", "--sections", "mesh_overhead", "--out", out],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout + done.stderr[-3000:]

    doc = json.loads(out.read_text())
    assert doc["quick"] is True and doc["errors"] == {}
    for key in MACHINE_KEYS:
        assert doc["machine"][key] not in ("", None, 0), key
    figures = {f["name"]: f for f in doc["figures"]}
    expected = {f"transcribe_{clip}" for clip in mesh_overhead.QUICK_CLIPS}
    assert set(figures) == expected
    for name, figure in figures.items():
        assert figure["section"] == "mesh_overhead"
        assert isinstance(figure["value"], float) and math.isfinite(figure["value"]), name
        assert figure["unit"] == "ratio" and figure["baseline"] and figure["goal"]
        assert figure["samples"] and all(math.isfinite(s) for s in figure["samples"])
        assert name in done.stdout  # the printed table
