"""The streaming bench section's bookkeeping, without a mesh: where speech ends in a clip, which
final closes which clip, endpoint latency and interim lag from what was sent and received, and
the long session's first-vs-last window."""

from __future__ import annotations

import math

import numpy as np
import pytest

from bench import streaming
from bench.streaming import Conversation, Placed, SessionLog, p95, speech_end, window_change
from devsupport import evalset
from services.client import LiveResult

SR = 16_000


def clip(i: int) -> evalset.Clip:
    return evalset.Clip(f"c{i}", "ko", evalset.ROOT, 3.0, "reference")


def result(text: str, start: float, end: float, final: bool) -> LiveResult:
    return LiveResult("jobs/x", 1, text, final, 1.0 if final else 0.5, start, end)


def test_speech_ends_at_the_last_loud_frame() -> None:
    samples = np.zeros(SR * 2, dtype=np.float32)
    samples[SR // 2 : SR] = 0.3  # speech from 0.5 to 1.0 s
    samples[SR + 100 : SR + 200] = 0.001  # a breath far below 5% of the peak
    assert speech_end(samples) == pytest.approx(1.0)


def test_latency_runs_from_sending_the_speech_end_to_the_closing_final() -> None:
    conversation = Conversation(
        "ko",
        b"",
        (Placed(clip(0), 0.5, 2.0, 2.2), Placed(clip(1), 4.7, 6.0, 6.1)),
    )
    log = SessionLog(conversation)
    # A chunk every 0.1 s of audio, sent at t = 100 + audio seconds.
    log.sent = [(100 + n / 10, n / 10) for n in range(1, 90)]
    log.results = [
        (101.0, result("안", 0.5, 0.9, False)),
        (101.6, result("안녕", 0.5, 1.5, False)),
        # A pause inside clip 0 made two finals: the later one closes the clip.
        (101.8, result("안녕", 0.5, 1.2, True)),
        (102.9, result("하세요", 1.3, 2.0, True)),
        (106.5, result("네", 4.8, 5.9, False)),
        (107.1, result("네.", 4.8, 6.0, True)),
    ]
    latencies = log.endpoint_latencies()
    assert [end for end, _ in latencies] == [2.0, 6.0]
    assert [round(s, 3) for _, s in latencies] == [0.9, 1.1]
    assert log.text_of(0) == "안녕 하세요" and log.text_of(1) == "네."
    # Audio sent at each interim minus the interim's end.
    assert [round(x, 3) for x in log.interim_lags()] == [0.1, 0.1, 0.6]


def test_a_clip_without_a_final_has_no_latency() -> None:
    conversation = Conversation("ko", b"", (Placed(clip(0), 0.5, 2.0, 2.2),))
    log = SessionLog(conversation)
    log.sent = [(10 + n / 10, n / 10) for n in range(1, 40)]
    assert log.endpoint_latencies() == [] and log.text_of(0) == ""


def test_window_change_compares_the_first_and_last_windows() -> None:
    points = [(t, 100.0 if t < 50 else 110.0) for t in range(0, 100, 2)]
    grew, first, last = window_change(points, 100, 30)
    assert (round(grew, 3), first, last) == (1.1, 100.0, 110.0)
    assert math.isnan(window_change([], 100, 30)[0])


def test_p95() -> None:
    assert p95([1.0]) == 1.0
    assert p95([float(x) for x in range(1, 101)]) == pytest.approx(95.05)
    assert math.isnan(p95([]))


def test_long_session_length_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(streaming.LONG_MINUTES_VAR, raising=False)
    assert streaming.long_minutes(quick=False) == 30.0
    assert streaming.long_minutes(quick=True) * 60 == pytest.approx(streaming.QUICK_LONG_SECONDS)
    monkeypatch.setenv(streaming.LONG_MINUTES_VAR, "2.5")
    assert streaming.long_minutes(quick=False) == 2.5
