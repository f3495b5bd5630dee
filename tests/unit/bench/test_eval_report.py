"""bench.eval's report: pooled per-language rates and RTF, clip selection, JSON and text output.

The transcription is a table lookup here (pure logic); tests/integration/test_eval.py runs the
real service and engine.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from bench import eval as bench_eval
from bench.eval_backends import Transcription, to_speech_level
from devsupport import evalset
from devsupport.evalset import Clip

CLIPS = [
    Clip("en_a", "en", Path("a.flac"), 4.0, "the cat sat on the mat"),  # 6 words
    Clip("en_b", "en", Path("b.flac"), 6.0, "platforms one and three"),  # 4 words
    Clip("ko_a", "ko", Path("c.flac"), 5.0, "안녕하세요 세계"),  # 7 characters
]
HEARD = {
    "en_a": Transcription("the cat sat on mat", 1.0),  # 1 deletion
    "en_b": Transcription("Platforms 1 and 3.", 2.0),  # 2 substitutions, 0 normalised
    "ko_a": Transcription("안녕 하세여 세계", 0.5),  # 1 substitution
}


def lookup(clip: Clip) -> Transcription:
    return HEARD[clip.id]


def test_pooled_rates_and_rtf_per_language() -> None:
    report = bench_eval.evaluate(CLIPS, lookup, normalise=False, settings={"mode": "test"})
    assert not report.normalised and report.settings == {"mode": "test"}
    en, ko = report.language("en"), report.language("ko")
    assert (en.metric, en.clips, en.edits, en.reference_units) == ("WER", 2, 3, 10)
    assert en.rate == pytest.approx(0.3)
    assert en.rtf == pytest.approx(3.0 / 10.0)  # pooled, not the mean of 0.25 and 0.333
    assert (ko.metric, ko.clips, ko.edits, ko.reference_units) == ("CER", 1, 1, 7)
    assert ko.rate == pytest.approx(1 / 7)
    assert ko.rtf == pytest.approx(0.1)
    assert [c.id for c in report.clips] == ["en_a", "en_b", "ko_a"]
    assert report.clips[1].rate == pytest.approx(0.5) and report.clips[1].rtf == pytest.approx(
        1 / 3
    )


def test_normalised_and_rescored() -> None:
    plain = bench_eval.evaluate(CLIPS, lookup, normalise=False)
    normalised = bench_eval.evaluate(CLIPS, lookup, normalise=True)
    assert normalised.normalised
    assert normalised.language("en").edits == 1
    assert normalised.clips[1].scored_hypothesis == "platforms one and three."
    # Rescoring the same hypotheses gives what a second run would, without transcribing.
    assert bench_eval.rescore(plain, True).as_dict() == normalised.as_dict()
    assert bench_eval.rescore(normalised, False).as_dict() == plain.as_dict()


def test_warm_up_calls_the_shortest_clip_once_more() -> None:
    calls: list[str] = []

    def counting(clip: Clip) -> Transcription:
        calls.append(clip.id)
        return lookup(clip)

    report = bench_eval.evaluate(CLIPS, counting, normalise=False, warm_up=True)
    assert calls == ["en_a", "en_a", "en_b", "ko_a"]
    assert len(report.clips) == 3


def test_on_clip_sees_every_result_in_order() -> None:
    seen: list[str] = []
    bench_eval.evaluate(CLIPS, lookup, normalise=True, on_clip=lambda r: seen.append(r.id))
    assert seen == ["en_a", "en_b", "ko_a"]


def test_json_and_text() -> None:
    report = bench_eval.evaluate(CLIPS, lookup, normalise=True, settings={"preset": "accurate"})
    data = json.loads(json.dumps(report.as_dict(), ensure_ascii=False))
    assert data["normalised"] is True
    assert {r["language"]: r["metric"] for r in data["languages"]} == {"en": "WER", "ko": "CER"}
    for row in data["languages"]:
        assert set(row) >= {"rate", "rtf", "edits", "reference_units", "audio_seconds", "clips"}
    row = data["clips"][2]
    assert row["reference"] == "안녕하세요 세계" and row["hypothesis"] == "안녕 하세여 세계"
    assert row["rate"] == pytest.approx(1 / 7) and row["rtf"] == pytest.approx(0.1)
    text = bench_eval.format_report(report, bench_eval.rescore(report, False))
    assert "normaliser: applied to reference and hypothesis" in text
    assert "same hypotheses without the normaliser: en WER 30.00%, ko CER 14.29%" in text
    assert "preset=accurate" in text and "ko_a" in text and "hyp: 안녕 하세여 세계" in text
    plain = bench_eval.evaluate(CLIPS, lookup, normalise=False)
    assert "normaliser: not applied" in bench_eval.format_report(plain)


def test_select() -> None:
    everything = evalset.clips()
    assert bench_eval.select() == everything
    assert {c.language for c in bench_eval.select(language="ko")} == {"ko"}
    quick = bench_eval.select(quick=True)
    assert sorted(c.language for c in quick) == ["en", "ko"]
    for clip in quick:
        same_language = [c.duration_seconds for c in everything if c.language == clip.language]
        assert clip.duration_seconds == min(same_language)
    assert [c.id for c in bench_eval.select(ids=["en_jfk", "en_pv_cheetah_test"])] == [
        "en_jfk",
        "en_pv_cheetah_test",
    ]
    with pytest.raises(SystemExit, match="unknown clip ids: nope"):
        bench_eval.select(ids=["nope"])


def test_figures_for_make_bench() -> None:
    report = bench_eval.evaluate(CLIPS, lookup, normalise=False, settings={"mode": "test"})
    figures = {f.name: f for f in bench_eval.figures(report)}
    assert set(figures) == {"wer_en", "rtf_en", "cer_ko", "rtf_ko"}
    assert figures["wer_en"].value == pytest.approx(0.3) and figures["wer_en"].unit == "ratio"
    assert figures["wer_en"].samples == (pytest.approx(1 / 6, abs=1e-4), 0.5)
    assert figures["rtf_ko"].value == pytest.approx(0.1)
    assert all(f.section == "eval" for f in figures.values())


def test_detected_languages_are_counted_when_the_language_was_not_given() -> None:
    detected = {"en_a": "en", "en_b": "nl", "ko_a": "ko"}

    def heard(clip: Clip) -> Transcription:
        return Transcription(HEARD[clip.id].text, 1.0, detected[clip.id])

    report = bench_eval.evaluate(CLIPS, heard, normalise=False, settings={"language": "detected"})
    assert [c.detected_language for c in report.clips] == ["en", "nl", "ko"]
    assert "language detected right on 2/3 clips (wrong: en_b=nl)" in bench_eval.format_report(
        report
    )
    assert bench_eval.rescore(report, True).clips[1].detected_language == "nl"
    given = bench_eval.evaluate(CLIPS, lookup, normalise=False, settings={"language": "given"})
    assert "language detected" not in bench_eval.format_report(given)


def _dbfs(samples: np.ndarray) -> float:
    return float(20 * np.log10(np.sqrt(np.mean(samples.astype(np.float64) ** 2))))


def test_to_speech_level_brings_the_speech_not_the_silence_to_the_level() -> None:
    rate = 16_000
    tone = 0.001 * np.sin(2 * np.pi * 220 * np.arange(rate) / rate)  # 1 s at about -63 dBFS
    quiet = np.concatenate([tone, np.zeros(rate)]).astype(np.float32)  # then 1 s of silence
    levelled = to_speech_level(quiet, -20.0)
    assert _dbfs(levelled[:rate]) == pytest.approx(-20.0, abs=0.2)
    assert not levelled[rate:].any()
    assert levelled.dtype == np.float32


def test_to_speech_level_never_clips_and_leaves_silence_alone() -> None:
    rate = 16_000
    clicks = np.zeros(rate, dtype=np.float32)
    clicks[::1600] = 0.5  # a loud peak, little energy
    assert np.abs(to_speech_level(clicks, -3.0)).max() == pytest.approx(0.99, abs=1e-3)
    silence = np.zeros(rate, dtype=np.float32)
    assert not to_speech_level(silence, -20.0).any()
