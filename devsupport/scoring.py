"""Error rates as ../shared/eval/README.md defines them.

Normalisation: Unicode NFKC, lowercase, punctuation and symbols to spaces (apostrophes dropped),
spaces collapsed. English: WER on words. Korean: CER on characters with all spaces removed.
Rates are pooled: total edits / total reference units.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

_APOSTROPHES = {"'", "’", "‘", "ʼ"}


def normalize(text: str) -> str:
    text = unicodedata.normalize("NFKC", text).lower()
    out = []
    for char in text:
        if char in _APOSTROPHES:
            continue
        category = unicodedata.category(char)
        out.append(" " if category[0] in ("P", "S") else char)
    return " ".join("".join(out).split())


def units(text: str, language: str) -> list[str]:
    """Scoring units: characters without spaces for Korean (and CJK), words otherwise."""
    normal = normalize(text)
    if language in ("ko", "ja", "zh"):
        return [c for c in normal if not c.isspace()]
    return normal.split()


def edit_distance(reference: Sequence[str], hypothesis: Sequence[str]) -> int:
    previous = list(range(len(hypothesis) + 1))
    for i, ref in enumerate(reference, 1):
        current = [i]
        for j, hyp in enumerate(hypothesis, 1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (ref != hyp)))
        previous = current
    return previous[-1]


@dataclass(frozen=True)
class Score:
    edits: int
    reference_units: int

    @property
    def rate(self) -> float:
        return self.edits / self.reference_units if self.reference_units else 0.0


def score(reference: str, hypothesis: str, language: str) -> Score:
    ref = units(reference, language)
    return Score(edit_distance(ref, units(hypothesis, language)), len(ref))


def pooled(scores: Iterable[Score]) -> Score:
    items = list(scores)
    return Score(sum(s.edits for s in items), sum(s.reference_units for s in items))
