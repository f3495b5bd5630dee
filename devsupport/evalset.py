"""The shared evaluation clips (../shared/eval): where they are and what they say."""

from __future__ import annotations

import csv
import os
from dataclasses import dataclass
from pathlib import Path

from devsupport.settings import EvalClipsSettings

ROOT = Path(__file__).resolve().parent.parent


def eval_dir() -> Path:
    """SAYIT_EVAL_DIR, else ../shared/eval beside the checkout, else /work/shared/eval."""
    setting = EvalClipsSettings.from_env(os.environ).eval_dir
    candidates = [
        str(setting) if setting else None,
        str(ROOT.parent / "shared" / "eval"),
        "/work/shared/eval",
    ]
    for candidate in candidates:
        if candidate and (Path(candidate) / "manifest.tsv").is_file():
            return Path(candidate)
    raise FileNotFoundError(
        "the evaluation clips were not found; set SAYIT_EVAL_DIR to the folder holding "
        f"manifest.tsv (looked at: {', '.join(c for c in candidates if c)})"
    )


@dataclass(frozen=True)
class Clip:
    id: str
    language: str
    path: Path
    duration_seconds: float
    reference: str

    def read(self) -> bytes:
        return self.path.read_bytes()


def clips(language: str | None = None, *, max_seconds: float | None = None) -> list[Clip]:
    folder = eval_dir()
    with open(folder / "manifest.tsv", newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f, delimiter="\t", quoting=csv.QUOTE_NONE))
    result = [
        Clip(r["id"], r["lang"], folder / r["file"], float(r["duration_s"]), r["reference"])
        for r in rows
    ]
    return [
        c
        for c in result
        if (language is None or c.language == language)
        and (max_seconds is None or c.duration_seconds <= max_seconds)
    ]


def clip(clip_id: str) -> Clip:
    for c in clips():
        if c.id == clip_id:
            return c
    raise KeyError(clip_id)
