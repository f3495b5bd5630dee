"""bench.eval's report: each clip's result, the pooled rates and RTF per language, and the
printed text (the JSON form is `Report.as_dict`)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from devsupport import scoring

METRICS = {"ko": "CER", "ja": "CER", "zh": "CER"}


def metric(language: str) -> str:
    return METRICS.get(language, "WER")


@dataclass(frozen=True)
class ClipResult:
    id: str
    language: str
    audio_seconds: float
    processing_seconds: float
    reference: str
    hypothesis: str
    # The texts as scored: after the normaliser when it was applied, else the same as above.
    scored_reference: str
    scored_hypothesis: str
    edits: int
    reference_units: int
    # The language the service reported ("" when unknown, e.g. the raw engine).
    detected_language: str = ""

    @property
    def rate(self) -> float:
        return scoring.Score(self.edits, self.reference_units).rate

    @property
    def rtf(self) -> float:
        return self.processing_seconds / self.audio_seconds if self.audio_seconds else 0.0

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "metric": metric(self.language), "rate": self.rate, "rtf": self.rtf}


@dataclass(frozen=True)
class LanguageResult:
    language: str
    clips: int
    edits: int
    reference_units: int
    audio_seconds: float
    processing_seconds: float

    @property
    def metric(self) -> str:
        return metric(self.language)

    @property
    def rate(self) -> float:
        """Pooled: total edits / total reference units."""
        return scoring.Score(self.edits, self.reference_units).rate

    @property
    def rtf(self) -> float:
        """Pooled: total processing seconds / total audio seconds."""
        return self.processing_seconds / self.audio_seconds if self.audio_seconds else 0.0

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "metric": self.metric, "rate": self.rate, "rtf": self.rtf}


@dataclass(frozen=True)
class Report:
    normalised: bool
    clips: tuple[ClipResult, ...]
    # What was measured: mode, preset, model, threads, ... (free-form, for the reader).
    settings: dict[str, str] = field(default_factory=dict)

    @property
    def languages(self) -> list[LanguageResult]:
        results = []
        for language in sorted({c.language for c in self.clips}):
            mine = [c for c in self.clips if c.language == language]
            results.append(
                LanguageResult(
                    language,
                    len(mine),
                    sum(c.edits for c in mine),
                    sum(c.reference_units for c in mine),
                    sum(c.audio_seconds for c in mine),
                    sum(c.processing_seconds for c in mine),
                )
            )
        return results

    def language(self, language: str) -> LanguageResult:
        return next(r for r in self.languages if r.language == language)

    def as_dict(self) -> dict[str, Any]:
        return {
            "normalised": self.normalised,
            "settings": self.settings,
            "languages": [r.as_dict() for r in self.languages],
            "clips": [c.as_dict() for c in self.clips],
        }


def _summary_lines(report: Report) -> list[str]:
    lines = [
        f"{'language':<9}{'clips':>6}{'metric':>8}{'rate':>9}{'units':>8}{'audio s':>9}{'RTF':>8}"
    ]
    for r in report.languages:
        lines.append(
            f"{r.language:<9}{r.clips:>6}{r.metric:>8}{r.rate:>9.2%}{r.reference_units:>8}"
            f"{r.audio_seconds:>9.1f}{r.rtf:>8.3f}"
        )
    return lines


def format_report(report: Report, other: Report | None = None) -> str:
    settings = ", ".join(f"{k}={v}" for k, v in report.settings.items())
    state = "applied to reference and hypothesis" if report.normalised else "not applied"
    lines = [f"eval: {settings}", "", f"{'clip':<28}{'rate':>8}{'RTF':>7}  reference / hypothesis"]
    for c in report.clips:
        lines.append(f"{c.id:<28}{c.rate:>8.2%}{c.rtf:>7.3f}  ref: {c.scored_reference}")
        lines.append(f"{'':<45}hyp: {c.scored_hypothesis}")
    # The summary last, where a long run's output ends.
    lines += ["", f"normaliser: {state}"]
    lines += _summary_lines(report)
    if report.settings.get("language") == "detected":
        right = [c for c in report.clips if c.detected_language == c.language]
        wrong = ", ".join(f"{c.id}={c.detected_language}" for c in report.clips if c not in right)
        lines.append(
            f"language detected right on {len(right)}/{len(report.clips)} clips"
            + (f" (wrong: {wrong})" if wrong else "")
        )
    if other is not None:
        way = "with" if other.normalised else "without"
        rates = ", ".join(f"{r.language} {r.metric} {r.rate:.2%}" for r in other.languages)
        lines.append(f"(same hypotheses {way} the normaliser: {rates})")
    return "\n".join(lines)
