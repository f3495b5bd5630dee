"""Metric helpers (services.common.metrics)."""

from __future__ import annotations

from services.common import metrics


def test_split_method() -> None:
    assert metrics.split_method("/sayit.speech.v1.SpeechService/Transcribe") == (
        "sayit.speech.v1.SpeechService",
        "Transcribe",
    )
    assert metrics.split_method("garbage") == ("unknown", "garbage")
