"""One measured figure of `make bench`, and how sections report them.

Every bench section is a module with `run(quick: bool) -> list[Figure]`. A figure is either a
ratio against the raw engine measured in the same run (`baseline` names what it is divided by)
or a plain measurement with its unit; `goal` is the target from the issue that asked for it.
"""

from __future__ import annotations

import itertools
import statistics
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass(frozen=True)
class Figure:
    section: str
    name: str
    value: float
    unit: str  # "ratio", "s", "ms", "MiB", "audio s/s", ...
    baseline: str = ""  # for ratios: what the value is divided by
    goal: str = ""  # e.g. "<= 1.05"
    samples: tuple[float, ...] = field(default_factory=tuple)
    note: str = ""

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def median(values: Sequence[float]) -> float:
    return float(statistics.median(values))


def largest_gap(times: Sequence[float]) -> float:
    """The longest wait between consecutive moments (0.0 for fewer than two)."""
    return max((b - a for a, b in itertools.pairwise(times)), default=0.0)
