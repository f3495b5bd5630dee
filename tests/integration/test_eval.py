"""`make eval` in quick mode: the shortest Korean and English clips through a real transcriber
process (with the normaliser), then through the in-process engine (--raw, without it).

Asserts the report's shape and that its figures are numbers in range, never a speed.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from devsupport import evalset

pytestmark = pytest.mark.model

ROOT = Path(__file__).resolve().parents[2]


def run_eval(tmp_path: Path, *args: str) -> tuple[dict[str, Any], str]:
    out = tmp_path / "report.json"
    done = subprocess.run(
        [sys.executable, "-m", "bench.eval", "--quick", "--json", str(out), *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(out.read_text()), done.stdout


def assert_report(data: dict[str, Any], text: str, *, normalised: bool, mode: str) -> None:
    shortest = {
        language: min(evalset.clips(language), key=lambda c: c.duration_seconds).id
        for language in ("ko", "en")
    }
    languages = {row["language"]: row for row in data["languages"]}
    assert set(languages) == {"ko", "en"}
    assert languages["ko"]["metric"] == "CER" and languages["en"]["metric"] == "WER"
    for row in languages.values():
        assert isinstance(row["rate"], float) and 0.0 <= row["rate"] <= 1.5, row
        assert math.isfinite(row["rtf"]) and row["rtf"] > 0, row
        assert row["clips"] == 1 and row["reference_units"] > 0 and row["audio_seconds"] > 0
    assert sorted(c["id"] for c in data["clips"]) == sorted(shortest.values())
    for clip in data["clips"]:
        assert clip["reference"] == evalset.clip(clip["id"]).reference
        assert clip["hypothesis"].strip(), clip  # Whisper heard something
        assert 0.0 <= clip["rate"] <= 1.5 and clip["rtf"] > 0
        assert clip["id"] in text
        assert f"ref: {clip['scored_reference']}" in text
        assert f"hyp: {clip['scored_hypothesis']}" in text
    assert data["normalised"] is normalised
    assert data["other"]["normalised"] is (not normalised)
    assert {r["language"] for r in data["other"]["languages"]} == {"ko", "en"}
    assert data["settings"]["mode"] == mode and data["settings"]["preset"] == "accurate"
    assert data["settings"]["model"] == "base" and data["settings"]["threads"] == "2"
    state = "applied to reference and hypothesis" if normalised else "not applied"
    assert f"normaliser: {state}" in text


def test_quick_eval_through_the_service(tmp_path: Path) -> None:
    data, text = run_eval(tmp_path, "--normalise")
    assert_report(data, text, normalised=True, mode="service")


def test_quick_eval_raw_engine(tmp_path: Path) -> None:
    data, text = run_eval(tmp_path, "--raw")
    assert_report(data, text, normalised=False, mode="raw engine")
