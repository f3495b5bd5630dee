"""python -m bench.eval — `make eval`: accuracy and speed on the shared clips.

Transcribes every clip of ../shared/eval/manifest.tsv (each with its own language) and prints,
per language, the pooled error rate (Korean CER, English WER; scoring as in that folder's
README, `devsupport.scoring`) and the real-time factor (processing s / audio s, pooled), then
one row per clip: error rate, RTF, reference and hypothesis.

What is measured (default: through the service):
- a transcriber process of its own (`python -m services.transcriber`, 1 slot, --threads CPU
  threads, --model, --preset), called with TranscribeStream;
- --addr HOST:PORT: a running gateway instead (`make up`; SAYIT_API_KEY, SAYIT_TLS_* as for
  `make load`); its transcribers decide model and threads;
- --raw: the in-process engine (faster-whisper, same model, threads and preset).

--normalise applies `bench.normalize` (numbers, contractions, hyphens) to BOTH reference and
hypothesis before scoring; the report says whether it did, and also gives the pooled rates the
other way, from the same hypotheses. --json FILE writes the report for other tools.

The preset tuning reuses `evaluate(clips, transcribe, normalise)` with
`eval_backends.RawEngine(...).transcriber(any DecodePreset)`.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

from bench import normalize
from bench.eval_backends import (
    DEFAULT_THREADS,
    GatewayTranscriber,
    RawEngine,
    ServiceTranscriber,
    TranscribeFn,
    Transcription,
    default_model,
)
from bench.eval_report import ClipResult, Report, format_report, metric
from bench.figures import Figure
from devsupport import evalset, scoring
from services.transcriber import presets

# --quick: the shortest clip of each language.
QUICK_PER_LANGUAGE = 1


def score_clip(clip: evalset.Clip, transcription: Transcription, normalise: bool) -> ClipResult:
    """One clip scored; the normaliser, when asked, goes on both sides alike."""
    reference, hypothesis = clip.reference, transcription.text
    if normalise:
        reference = normalize.normalize(reference, clip.language)
        hypothesis = normalize.normalize(hypothesis, clip.language)
    score = scoring.score(reference, hypothesis, clip.language)
    return ClipResult(
        id=clip.id,
        language=clip.language,
        audio_seconds=clip.duration_seconds,
        processing_seconds=transcription.seconds,
        reference=clip.reference,
        hypothesis=transcription.text,
        scored_reference=reference,
        scored_hypothesis=hypothesis,
        edits=score.edits,
        reference_units=score.reference_units,
        detected_language=transcription.language,
    )


def evaluate(
    clips: Iterable[evalset.Clip],
    transcribe: TranscribeFn,
    normalise: bool,
    *,
    settings: dict[str, str] | None = None,
    on_clip: Callable[[ClipResult], None] | None = None,
    warm_up: bool = False,
) -> Report:
    """Transcribe each clip in turn (one at a time: RTF is per call) and score it. With
    `warm_up`, the shortest clip is transcribed once first, untimed (first calls are slower)."""
    clips = list(clips)
    if warm_up and clips:
        transcribe(min(clips, key=lambda c: c.duration_seconds))
    results = []
    for clip in clips:
        result = score_clip(clip, transcribe(clip), normalise)
        results.append(result)
        if on_clip is not None:
            on_clip(result)
    return Report(normalise, tuple(results), dict(settings or {}))


def rescore(report: Report, normalise: bool) -> Report:
    """The same hypotheses scored with (or without) the normaliser: no new transcription."""
    clips = []
    for c in report.clips:
        clip = evalset.Clip(c.id, c.language, Path(), c.audio_seconds, c.reference)
        again = Transcription(c.hypothesis, c.processing_seconds, c.detected_language)
        clips.append(score_clip(clip, again, normalise))
    return replace(report, normalised=normalise, clips=tuple(clips))


def select(
    *, language: str | None = None, ids: Sequence[str] = (), quick: bool = False
) -> list[evalset.Clip]:
    """The clips to run: all of them, of one language, the named ones, or (quick) the shortest
    of each language."""
    chosen = evalset.clips(language)
    if ids:
        known = {c.id: c for c in evalset.clips()}
        unknown = [i for i in ids if i not in known]
        if unknown:
            raise SystemExit(f"unknown clip ids: {', '.join(unknown)}")
        chosen = [known[i] for i in ids if language is None or known[i].language == language]
    elif quick:
        shortest: list[evalset.Clip] = []
        for lang in sorted({c.language for c in chosen}):
            mine = sorted(
                (c for c in chosen if c.language == lang), key=lambda c: c.duration_seconds
            )
            shortest += mine[:QUICK_PER_LANGUAGE]
        chosen = shortest
    return chosen


# --- as a bench section --------------------------------------------------------------------------

SECTION = "eval"


def figures(report: Report) -> list[Figure]:
    """The report's per-language figures in `make bench` form."""
    way = "normalised" if report.normalised else "not normalised"
    mode = report.settings.get("mode", "")
    result = []
    for r in report.languages:
        result += [
            Figure(
                SECTION,
                f"{r.metric.lower()}_{r.language}",
                round(r.rate, 4),
                "ratio",
                samples=tuple(round(c.rate, 4) for c in report.clips if c.language == r.language),
                note=f"pooled over {r.clips} clips, {way}, {mode}",
            ),
            Figure(
                SECTION,
                f"rtf_{r.language}",
                round(r.rtf, 4),
                "s/s",
                note=f"processing s / audio s, pooled, {mode}",
            ),
        ]
    return result


def run(quick: bool) -> list[Figure]:
    """A bench section: the clips (quick: the shortest per language) through our own
    transcriber, accurate preset, not normalised."""
    settings = {"mode": "service", "preset": presets.ACCURATE}
    with ServiceTranscriber() as service:
        report = evaluate(select(quick=quick), service, False, settings=settings, warm_up=True)
    return figures(report)


# --- command line --------------------------------------------------------------------------------


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m bench.eval", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--preset", choices=presets.PRESET_NAMES, default=presets.ACCURATE)
    parser.add_argument("--model", help="model name or directory (default: SAYIT_MODEL or base)")
    parser.add_argument("--threads", type=int, default=DEFAULT_THREADS, help="CPU threads")
    how = parser.add_mutually_exclusive_group()
    how.add_argument("--raw", action="store_true", help="the in-process engine, no service")
    how.add_argument("--addr", help="a running gateway HOST:PORT instead of our own transcriber")
    parser.add_argument(
        "--normalise",
        "--normalize",
        action="store_true",
        help="normalise numbers, contractions and hyphens on both sides before scoring",
    )
    parser.add_argument(
        "--detect",
        action="store_true",
        help="send no language: the service detects it (the report counts how often rightly)",
    )
    parser.add_argument("--language", choices=("ko", "en"), help="only this language's clips")
    parser.add_argument("--clips", help="only these clip ids (comma-separated)")
    parser.add_argument("--quick", action="store_true", help="the shortest clip per language")
    parser.add_argument("--json", type=Path, help="also write the report here as JSON")
    return parser


def _progress(result: ClipResult) -> None:
    print(
        f"  {result.id:<28} {metric(result.language)} {result.rate:7.2%}  RTF {result.rtf:.3f}",
        file=sys.stderr,
        flush=True,
    )


@contextmanager
def _backend(args: argparse.Namespace) -> Iterator[TranscribeFn]:
    """What the command line asked to measure, ready to call; stopped afterwards."""
    if args.raw:
        if args.detect:
            raise SystemExit("--detect needs the service (or --addr), not --raw")
        yield RawEngine(args.model, cpu_threads=args.threads).transcriber(preset_name=args.preset)
    elif args.addr:
        gateway = GatewayTranscriber(args.addr, preset_name=args.preset, detect=args.detect)
        try:
            yield gateway
        finally:
            gateway.close()
    else:
        with ServiceTranscriber(
            args.model, preset_name=args.preset, cpu_threads=args.threads, detect=args.detect
        ) as service:
            yield service


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    ids = [i.strip() for i in (args.clips or "").split(",") if i.strip()]
    clips = select(language=args.language, ids=ids, quick=args.quick)
    if not clips:
        raise SystemExit("no clips selected")
    settings = {
        "mode": "raw engine" if args.raw else (f"gateway {args.addr}" if args.addr else "service"),
        "preset": args.preset,
        "language": "detected" if args.detect else "given",
        "model": "(the gateway's)" if args.addr else (args.model or default_model()),
        "threads": "(the gateway's)" if args.addr else str(args.threads),
        "date": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "machine": f"{platform.machine()} {platform.processor() or ''}".strip(),
    }
    print(f"eval: {len(clips)} clips, {settings['mode']}", file=sys.stderr, flush=True)
    with _backend(args) as transcribe:
        report = evaluate(
            clips,
            transcribe,
            args.normalise,
            settings=settings,
            on_clip=_progress,
            warm_up=not args.quick,
        )
    other = rescore(report, not args.normalise)
    print(format_report(report, other))
    if args.json:
        other_rates = {"normalised": other.normalised, "languages": other.as_dict()["languages"]}
        data = {**report.as_dict(), "other": other_rates}
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(data, ensure_ascii=False, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
