"""Turning figures into the printed table and the stored JSON."""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bench.figures import Figure

COLUMNS = ("section", "figure", "value", "unit", "goal", "baseline / note")


def ratio(value: float, baseline: float) -> float:
    """value / baseline; NaN when the baseline is not a positive number (never raises)."""
    if not baseline > 0 or not math.isfinite(baseline):
        return math.nan
    return value / baseline


def paired_ratios(served: list[float], raw: list[float]) -> list[float]:
    """Each mesh measurement divided by the engine's made next to it: the machine's drift over
    minutes weighs on both sides of each pair alike, so their median is steadier than the
    ratio of the two medians."""
    return [ratio(s, r) for s, r in zip(served, raw, strict=True)]


def _cell(figure: Figure) -> list[str]:
    detail = "; ".join(x for x in (figure.baseline and f"÷ {figure.baseline}", figure.note) if x)
    return [
        figure.section,
        figure.name,
        f"{figure.value:.4g}",
        figure.unit,
        figure.goal,
        detail,
    ]


def table(figures: Sequence[Figure]) -> str:
    """A fixed-width table, one figure a row (the last column is left unpadded)."""
    rows = [list(COLUMNS)] + [_cell(f) for f in figures]
    widths = [max(len(row[i]) for row in rows) for i in range(len(COLUMNS) - 1)]
    lines = []
    for n, row in enumerate(rows):
        cells = [row[i].ljust(widths[i]) for i in range(len(widths))] + [row[-1]]
        lines.append("  ".join(cells).rstrip())
        if n == 0:
            lines.append("  ".join("-" * w for w in widths) + "  " + "-" * 15)
    return "\n".join(lines)


def document(
    machine: dict[str, Any], figures: Sequence[Figure], quick: bool, errors: dict[str, str]
) -> dict[str, Any]:
    return {
        "machine": machine,
        "quick": quick,
        "figures": [f.as_dict() for f in figures],
        "errors": errors,
    }


def write(path: Path, doc: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    # NaN is not JSON: a figure that could not be computed is stored as null.
    text = json.dumps(_nan_to_none(doc), ensure_ascii=False, indent=2, allow_nan=False)
    path.write_text(text + "\n", encoding="utf-8")


def _nan_to_none(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _nan_to_none(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_nan_to_none(v) for v in value]
    return value
