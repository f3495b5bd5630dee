"""Preset tuning: every candidate decoding setting on the shared clips, raw engine, one run.

    python -m bench.tune [--language ko|en] [--only NAME,...] [--repeats N] [--json FILE]

Each candidate is faster-whisper's defaults (the baseline every preset must beat) with one or a
few settings changed. For each language it prints the pooled error rate (plain and normalised,
see bench.normalize) and the pooled real-time factor relative to the baseline measured in the
same run. The evidence and the choices drawn from it are in docs/presets.md.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from bench.eval import evaluate, rescore
from bench.eval_backends import RawEngine
from bench.figures import median
from devsupport import audio, evalset
from services.transcriber import presets
from services.transcriber.presets import DecodePreset

# faster-whisper 1.2.1's own defaults for WhisperModel.transcribe (vad_filter=False; its VAD
# defaults when VAD is on: threshold 0.5, min silence 2000 ms, pad 400 ms).
FW_DEFAULTS = DecodePreset(
    vad_threshold=0.5,
    vad_min_silence_ms=2000,
    vad_speech_pad_ms=400,
    language_detection_segments=1,
    vad_region_max_seconds=None,
)

KO_PROMPT = "다음은 한국어 낭독 음성을 받아 적은 것입니다."
EN_PROMPT = "Hello. This is a carefully punctuated English transcript."
PROMPTS = {"ko": KO_PROMPT, "en": EN_PROMPT}
# Round 6: Korean prompts without punctuation (round 1's full stop made the model drop words).
KO_PLAIN_PROMPT = "다음은 한국어 대화를 받아 적은 것입니다"
KO_POLITE_PROMPT = "네 안녕하세요 말씀해 주시겠어요 감사합니다"
EN_LONG_PROMPT = (
    "Hello, welcome. The following is a clear, well-punctuated transcript, with numbers written"
    " as words."
)


@dataclass(frozen=True)
class Candidate:
    name: str
    preset: DecodePreset
    vad_filter: bool = True
    prompt: dict[str, str] = field(default_factory=dict)
    # Round 8: the prompt given as faster-whisper's hotwords (before every window, not only the
    # first), and the input brought to one speech level first.
    hint: dict[str, str] = field(default_factory=dict)
    speech_dbfs: float | None = None


def candidates() -> list[Candidate]:
    d = FW_DEFAULTS
    vad = replace(d, vad_min_silence_ms=1000)
    # Round 3: speech regions decoded as windows of their own (services/transcriber/regions.py).
    r25 = replace(d, vad_region_max_seconds=25.0, vad_min_silence_ms=500, vad_speech_pad_ms=200)
    r25nc = replace(r25, condition_on_previous_text=False)
    acc = replace(r25nc, vad_region_lead_ms=400)  # round 5's accurate preset
    redecode = replace(acc, redecode_skipped=True)  # round 7's
    return [
        Candidate("fw-defaults", d, vad_filter=False),
        # Round 1: one setting at a time, faster-whisper's VAD (speech glued into 30 s windows).
        Candidate("vad", d),
        Candidate("vad-silence1000", vad),
        Candidate("vad-silence500", replace(d, vad_min_silence_ms=500)),
        Candidate("vad-threshold0.35", replace(vad, vad_threshold=0.35)),
        Candidate("vad-threshold0.6", replace(vad, vad_threshold=0.6)),
        Candidate("vad-pad200", replace(vad, vad_speech_pad_ms=200)),
        Candidate("vad-pad800", replace(vad, vad_speech_pad_ms=800)),
        Candidate("no-condition", replace(vad, condition_on_previous_text=False)),
        Candidate("beam1-greedy", replace(vad, beam_size=1, best_of=1)),
        Candidate("beam3", replace(vad, beam_size=3)),
        Candidate("beam8", replace(vad, beam_size=8)),
        Candidate("beam5-patience2", replace(vad, patience=2.0)),
        Candidate("best_of3", replace(vad, best_of=3)),
        Candidate("fallback-0-0.2-0.4", replace(vad, temperatures=(0.0, 0.2, 0.4))),
        Candidate("fallback-none", replace(vad, temperatures=(0.0,))),
        Candidate("repetition-penalty1.1", replace(vad, repetition_penalty=1.1)),
        Candidate("prompt", vad, prompt=PROMPTS),
        # Round 2: the best single changes combined.
        Candidate("pad200-prompt", replace(vad, vad_speech_pad_ms=200), prompt=PROMPTS),
        Candidate("pad200-beam8", replace(vad, vad_speech_pad_ms=200, beam_size=8)),
        Candidate(
            "pad200-beam8-no-condition",
            replace(vad, vad_speech_pad_ms=200, beam_size=8, condition_on_previous_text=False),
        ),
        # Round 3: regions.
        Candidate("regions25", r25),
        Candidate("regions25-no-condition", replace(r25, condition_on_previous_text=False)),
        Candidate("regions15", replace(r25, vad_region_max_seconds=15.0)),
        Candidate(
            "regions25-silence1000-pad400",
            replace(r25, vad_min_silence_ms=1000, vad_speech_pad_ms=400),
        ),
        Candidate("regions25-beam8", replace(r25, beam_size=8)),
        Candidate("regions25-prompt", r25, prompt=PROMPTS),
        Candidate("regions25-greedy", replace(r25, beam_size=1, best_of=1)),
        Candidate(
            "regions25-greedy-no-condition",
            replace(r25, beam_size=1, best_of=1, condition_on_previous_text=False),
        ),
        # Round 4: the first syllable after a pause (VAD onset) without losing regions' gains.
        Candidate("regions25-no-condition-pad400", replace(r25nc, vad_speech_pad_ms=400)),
        Candidate("regions25-no-condition-pad600", replace(r25nc, vad_speech_pad_ms=600)),
        Candidate("regions25-no-condition-threshold0.35", replace(r25nc, vad_threshold=0.35)),
        Candidate(
            "regions25-no-condition-threshold0.35-pad400",
            replace(r25nc, vad_threshold=0.35, vad_speech_pad_ms=400),
        ),
        # Round 5: start each region's window earlier instead (regions merge as with pad 200).
        Candidate("regions25-no-condition-lead200", replace(r25nc, vad_region_lead_ms=200)),
        Candidate("regions25-no-condition-lead400", replace(r25nc, vad_region_lead_ms=400)),
        Candidate("regions25-no-condition-lead600", replace(r25nc, vad_region_lead_ms=600)),
        Candidate(
            "regions25-greedy-lead400",
            replace(r25, beam_size=1, best_of=1, vad_region_lead_ms=400),
        ),
        # Round 6: around the accurate preset, for the short Korean clips it only ties on.
        Candidate("accurate-beam8", replace(acc, beam_size=8)),
        Candidate("accurate-beam10", replace(acc, beam_size=10)),
        Candidate("accurate-patience2", replace(acc, patience=2.0)),
        Candidate("accurate-lead500", replace(acc, vad_region_lead_ms=500)),
        Candidate("accurate-threshold0.4", replace(acc, vad_threshold=0.4)),
        Candidate("accurate-silence300", replace(acc, vad_min_silence_ms=300)),
        Candidate("accurate-regions20", replace(acc, vad_region_max_seconds=20.0)),
        Candidate("accurate-regions30", replace(acc, vad_region_max_seconds=30.0)),
        Candidate("accurate-no-repeat3", replace(acc, no_repeat_ngram_size=3)),
        Candidate("accurate-prompt-plain", acc, prompt={"ko": KO_PLAIN_PROMPT}),
        Candidate("accurate-prompt-polite", acc, prompt={"ko": KO_POLITE_PROMPT}),
        # Round 7: speech a segment claims but never wrote, decoded again (skips.py).
        Candidate("accurate-redecode", replace(acc, redecode_skipped=True)),
        Candidate(
            "fast-redecode",
            replace(
                acc,
                beam_size=1,
                best_of=1,
                condition_on_previous_text=True,
                redecode_skipped=True,
            ),
        ),
        Candidate(
            "accurate-redecode-condition",
            replace(acc, redecode_skipped=True, condition_on_previous_text=True),
        ),
        Candidate("accurate-redecode-beam8", replace(acc, redecode_skipped=True, beam_size=8)),
        Candidate(
            "fast-lead400",
            replace(acc, beam_size=1, best_of=1, condition_on_previous_text=True),
        ),
        # Round 8: English prompts again, now around the accurate preset (round 1's help came
        # with faster-whisper's glued VAD), and the input's level.
        Candidate("accurate-prompt-en", redecode, prompt={"en": EN_PROMPT}),
        Candidate("accurate-prompt-en-long", redecode, prompt={"en": EN_LONG_PROMPT}),
        Candidate("accurate-hint-en", redecode, hint={"en": EN_PROMPT}),
        Candidate("accurate-hint-en-long", redecode, hint={"en": EN_LONG_PROMPT}),
        Candidate("fw-defaults-speech-20dbfs", d, vad_filter=False, speech_dbfs=-20.0),
        Candidate("accurate-speech-20dbfs", redecode, speech_dbfs=-20.0),
        Candidate("accurate-speech-25dbfs", redecode, speech_dbfs=-25.0),
        # ... and longer regions (fewer 30 s encoder passes) for long Korean's cost.
        Candidate("accurate-redecode-regions28", replace(redecode, vad_region_max_seconds=28.0)),
        Candidate("accurate-redecode-regions30", replace(redecode, vad_region_max_seconds=30.0)),
    ]


def table_candidates() -> list[Candidate]:
    """The presets table as it stands (per language), for the final comparison."""
    return [Candidate(f"table-{name}", presets.lookup("", name)) for name in presets.PRESET_NAMES]


def korean_long_clip(seconds: float = 180.0) -> evalset.Clip:
    """The Korean clips joined into one long file (the shared set has no Korean long-form),
    written once to a temporary WAV so it goes through the same path as every clip."""
    content, reference, total = audio.korean_long(seconds)
    path = Path(tempfile.gettempdir()) / f"sayit-tune-ko-long-{int(seconds)}.wav"
    path.write_bytes(content)
    return evalset.Clip("ko_long_joined", "ko", path, total, reference)


def _run(
    engine: RawEngine, candidate: Candidate, clips: list[evalset.Clip], language: str
) -> dict[str, Any]:
    preset = (
        presets.lookup(language, candidate.name.removeprefix("table-"))
        if candidate.name.startswith("table-")
        else candidate.preset
    )
    transcribe = engine.transcriber(
        preset,
        vad_filter=candidate.vad_filter,
        initial_prompt=candidate.prompt.get(language),
        hotwords=candidate.hint.get(language),
        speech_dbfs=candidate.speech_dbfs,
    )
    report = evaluate(clips, transcribe, normalise=False)
    plain, normalised = report.language(language), rescore(report, True).language(language)
    return {
        "candidate": candidate.name,
        "language": language,
        "rate": plain.rate,
        "rate_normalised": normalised.rate,
        "rtf": plain.rtf,
        "hypotheses": {c.id: c.hypothesis for c in report.clips},
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.tune", description=__doc__)
    parser.add_argument("--language", choices=("ko", "en", "ko-long"), action="append")
    parser.add_argument("--only", default="", help="comma-separated candidate names")
    parser.add_argument("--table", action="store_true", help="also the presets table's rows")
    parser.add_argument("--repeats", type=int, default=1, help="timing repeats (median RTF)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    chosen = candidates() + (table_candidates() if args.table else [])
    if args.only:
        names = set(args.only.split(","))
        chosen = [c for c in chosen if c.name in names]
    engine = RawEngine(cpu_threads=args.threads)
    results = []
    for label in args.language or ["ko", "en"]:
        clips = [korean_long_clip()] if label == "ko-long" else evalset.clips(label)
        language = clips[0].language
        engine.transcriber(FW_DEFAULTS)(min(clips, key=lambda c: c.duration_seconds))  # warm
        baseline_rtf = None
        for candidate in chosen:
            runs = [_run(engine, candidate, clips, language) for _ in range(args.repeats)]
            result = {**runs[0], "rtf": median([r["rtf"] for r in runs])}
            if candidate.name == "fw-defaults":
                baseline_rtf = result["rtf"]
            result["speed_cost"] = result["rtf"] / baseline_rtf if baseline_rtf else None
            results.append({**result, "set": label})
            cost = f"{result['speed_cost']:.2f}" if result["speed_cost"] else "-"
            print(
                f"{label} {candidate.name:24s} rate {result['rate']:.4f} "
                f"normalised {result['rate_normalised']:.4f} rtf {result['rtf']:.3f} "
                f"x{cost}",
                flush=True,
            )
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(results, ensure_ascii=False, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
