"""How far apart two transcripts of the same audio are (`make arm64-check`: x86-64 vs arm64).

Both texts are cut into the units the evaluation scores (devsupport.scoring): characters without
spaces for Korean, words for English, after the same normalisation (case and punctuation do not
count). The distance is the edit distance between the two unit lists.

Why at most MAX_EDITS units per clip: the two architectures run the same int8 model through
different CTranslate2 kernels, whose rounding differs, so beam search may pick a different token
where two candidates score almost alike. One such token is one to three Korean syllables or one
or two English words (a token can be part of a word), and a flip can pull a neighbour with it.
By hand, an 8 s Korean clip differed by one character. A real fault (wrong arithmetic, a broken
wheel, another model) changes most of a clip's 10-40 units. Three sits between the two.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass

from devsupport.scoring import edit_distance, units

MAX_EDITS = 3


@dataclass(frozen=True)
class TextDiff:
    language: str
    baseline_units: tuple[str, ...]  # the x86-64 text's units
    other_units: tuple[str, ...]  # the arm64 text's units
    edits: int

    @property
    def unit_name(self) -> str:
        return "words" if language_has_words(self.language) else "characters"

    def problem(self, max_edits: int = MAX_EDITS) -> str | None:
        """Why this pair fails the check, or None when it passes."""
        if not self.baseline_units:
            # Nothing to compare: two empty texts would agree without proving anything.
            return "the x86-64 transcript is empty"
        if self.edits > max_edits:
            return f"{self.edits} {self.unit_name} differ (at most {max_edits} allowed)"
        return None

    def changes(self) -> list[str]:
        """The differing spans, e.g. `'갔다' -> '갔어'`, `+'the'`, `-'a'` (x86-64 -> arm64)."""
        sep = " " if language_has_words(self.language) else ""
        matcher = difflib.SequenceMatcher(
            None, self.baseline_units, self.other_units, autojunk=False
        )
        out = []
        for tag, i1, i2, j1, j2 in matcher.get_opcodes():
            old, new = sep.join(self.baseline_units[i1:i2]), sep.join(self.other_units[j1:j2])
            if tag == "replace":
                out.append(f"{old!r} -> {new!r}")
            elif tag == "delete":
                out.append(f"-{old!r}")
            elif tag == "insert":
                out.append(f"+{new!r}")
        return out


def language_has_words(language: str) -> bool:
    return language not in ("ko", "ja", "zh")


def compare(baseline: str, other: str, language: str) -> TextDiff:
    a, b = tuple(units(baseline, language)), tuple(units(other, language))
    return TextDiff(language, a, b, edit_distance(a, b))
