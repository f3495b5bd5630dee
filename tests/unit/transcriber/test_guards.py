"""services.transcriber.guards: the flags that say why a segment may be invented."""

from __future__ import annotations

import numpy as np
import pytest

from services.transcriber.guards import (
    HIGH_COMPRESSION_RATIO,
    HIGH_NO_SPEECH_PROB,
    LOW_AVG_LOGPROB,
    REPETITION,
    SUSPECTED_HALLUCINATION,
    Thresholds,
    has_no_signal,
    is_hallucination,
    segment_flags,
)

T = Thresholds()
GOOD = {"avg_logprob": -0.3, "no_speech_prob": 0.05, "compression_ratio": 1.4}
SENTENCE = "The quick brown fox jumps over the lazy dog."


def flags(
    text: str = SENTENCE,
    previous_text: str = "",
    thresholds: Thresholds = T,
    **signals: float,
) -> list[str]:
    values = {**GOOD, **signals}
    return segment_flags(
        text,
        values["avg_logprob"],
        values["no_speech_prob"],
        values["compression_ratio"],
        previous_text,
        thresholds,
    )


def test_default_thresholds() -> None:
    assert (T.no_speech_prob, T.avg_logprob, T.compression_ratio) == (0.6, -1.0, 2.4)


def test_good_segment_has_no_flags() -> None:
    assert flags() == []


@pytest.mark.parametrize(
    "text",
    [
        SENTENCE,
        "And so, my fellow Americans: ask not what your country can do for you, ask what you "
        "can do for your country.",
        "I think I think that is right.",
        "Yes, yes, yes. That is it.",
        "Buffalo buffalo Buffalo buffalo buffalo buffalo Buffalo buffalo.",  # 8 in a row
        "오늘 회의에서는 다음 분기 예산과 채용 계획을 논의하겠습니다.",
        "네 네 네 알겠습니다.",
        "",
    ],
)
def test_normal_sentences_are_not_flagged(text: str) -> None:
    assert flags(text) == []


# --- each signal alone ---------------------------------------------------------------------------


def test_high_no_speech_prob_alone() -> None:
    assert flags(no_speech_prob=0.61) == [HIGH_NO_SPEECH_PROB]
    assert flags(no_speech_prob=0.6) == []  # at the threshold is fine


def test_low_avg_logprob_alone() -> None:
    assert flags(avg_logprob=-1.01) == [LOW_AVG_LOGPROB]
    assert flags(avg_logprob=-1.0) == []


def test_high_compression_ratio_alone() -> None:
    assert flags(compression_ratio=2.41) == [HIGH_COMPRESSION_RATIO]
    assert flags(compression_ratio=2.4) == []


def test_repetition_alone() -> None:
    assert flags(" ".join(["thank you"] * 6)) == [REPETITION]


def test_custom_thresholds() -> None:
    strict = Thresholds(no_speech_prob=0.1, avg_logprob=-0.2, compression_ratio=1.2)
    assert flags(thresholds=strict) == [
        LOW_AVG_LOGPROB,
        HIGH_COMPRESSION_RATIO,
        SUSPECTED_HALLUCINATION,
    ]


# --- suspected hallucination ---------------------------------------------------------------------


def test_two_signals_mean_suspected_hallucination() -> None:
    assert flags(no_speech_prob=0.9, avg_logprob=-1.5) == [
        HIGH_NO_SPEECH_PROB,
        LOW_AVG_LOGPROB,
        SUSPECTED_HALLUCINATION,
    ]
    assert flags("bye " * 12, compression_ratio=3.0) == [
        HIGH_COMPRESSION_RATIO,
        REPETITION,
        SUSPECTED_HALLUCINATION,
    ]


def test_all_signals() -> None:
    assert flags("bye " * 12, no_speech_prob=0.9, avg_logprob=-2.0, compression_ratio=5.0) == [
        HIGH_NO_SPEECH_PROB,
        LOW_AVG_LOGPROB,
        HIGH_COMPRESSION_RATIO,
        REPETITION,
        SUSPECTED_HALLUCINATION,
    ]


# --- repetition ----------------------------------------------------------------------------------

# (n-gram, how many back-to-back repeats flag it): 1-grams 12, 2-grams 6, 3- and 4-grams 4.
LOOPS = [
    (["you"], 12),
    (["thank", "you"], 6),
    (["see", "you", "soon"], 4),
    (["please", "subscribe", "to", "us"], 4),
]


@pytest.mark.parametrize(("gram", "needed"), LOOPS, ids=lambda v: str(v))
@pytest.mark.parametrize("prefix", [0, 1, 2, 3, 5])
def test_ngram_loop_at_any_offset(gram: list[str], needed: int, prefix: int) -> None:
    lead = ["alpha", "beta", "gamma", "delta", "epsilon"][:prefix]
    tail = ["omega"]
    enough = " ".join(lead + gram * needed + tail)
    too_few = " ".join(lead + gram * (needed - 1) + tail)
    assert REPETITION in flags(enough)
    assert REPETITION not in flags(too_few)


@pytest.mark.parametrize(("gram", "needed"), LOOPS, ids=lambda v: str(v))
def test_loop_with_punctuation_and_case(gram: list[str], needed: int) -> None:
    pieces = [" ".join(gram).capitalize() + "," for _ in range(needed)]
    assert flags(" ".join(pieces)) == [REPETITION]


def test_repeats_must_be_back_to_back() -> None:
    interleaved = " ".join(f"thank you {i}" for i in range(10))
    assert flags(interleaved) == []


def test_korean_loop() -> None:
    assert flags("감사합니다 " * 12) == [REPETITION]
    assert flags("감사합니다 " * 11) == []
    assert flags("구독과 좋아요 " * 6) == [REPETITION]
    assert flags("구독과 좋아요 " * 5) == []
    assert flags("시청해 주셔서 감사합니다. " * 4) == [REPETITION]


def test_same_text_as_previous_segment() -> None:
    assert flags(SENTENCE, previous_text=SENTENCE) == [REPETITION]
    # Case and punctuation do not matter; words do.
    assert flags("THE QUICK brown fox, jumps over the lazy dog", previous_text=SENTENCE) == [
        REPETITION
    ]
    assert flags("The quick brown fox jumps over a lazy dog.", previous_text=SENTENCE) == []
    assert flags("감사합니다.", previous_text="감사합니다") == [REPETITION]


def test_empty_text_is_not_a_repeat_of_empty_previous() -> None:
    assert flags("", previous_text="") == []
    assert flags("...", previous_text="!!!") == []


def test_flags_are_fresh_lists() -> None:
    first = flags()
    first.append("x")
    assert flags() == []


# --- segments dropped as invented text -------------------------------------------------------


def hallucinated(text: str = SENTENCE, **signals: float) -> bool:
    values = {**GOOD, **signals}
    return is_hallucination(
        text,
        values["avg_logprob"],
        values["no_speech_prob"],
        values["compression_ratio"],
        T,
    )


def test_confident_speech_is_kept() -> None:
    assert not hallucinated()
    # A loop the model is sure is speech is flagged, never dropped.
    assert not hallucinated("4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4", compression_ratio=12.0)


def test_a_loop_over_noise_is_dropped() -> None:
    # What white noise gave through the service: confident, looping, "probably not speech".
    assert hallucinated("1,2,3,4,4,4,4,4,4,4,4,4,4", no_speech_prob=0.78, compression_ratio=12.4)


def test_whisper_no_speech_rule() -> None:
    assert hallucinated(no_speech_prob=0.9, avg_logprob=-1.5)
    assert not hallucinated(no_speech_prob=0.9, avg_logprob=-0.5)
    assert not hallucinated(no_speech_prob=0.3, avg_logprob=-1.5)


@pytest.mark.parametrize(
    "text", ["You", "Thank you.", "수고하셨습니다.", "시청해주셔서 감사합니다!"]
)
def test_stock_phrases_are_dropped_only_when_speech_is_doubted(text: str) -> None:
    assert hallucinated(text, no_speech_prob=0.55)
    assert not hallucinated(text, no_speech_prob=0.05)


def test_punctuation_only_is_dropped_only_when_speech_is_doubted() -> None:
    # What white noise gave with language detection: "..." four times, no-speech 0.80.
    assert hallucinated("...", no_speech_prob=0.80, avg_logprob=-0.92, compression_ratio=1.07)
    assert not hallucinated("...", no_speech_prob=0.2)


def test_no_signal_is_digital_silence_only() -> None:
    rate = 16_000
    quiet_speech = np.zeros(rate * 2, dtype=np.float32)
    quiet_speech[rate : rate + 100] = 0.005  # the quietest shared clips peak near -46 dBFS
    assert has_no_signal(quiet_speech, 0.0, 0.9, rate)
    assert not has_no_signal(quiet_speech, 0.5, 1.5, rate)
    assert not has_no_signal(quiet_speech, 1.0, 1.0, rate)  # no length inside: nothing to judge
    # Text stamped after the audio ends stands over no audio at all.
    assert has_no_signal(quiet_speech, 2.0, 6.0, rate)
    assert has_no_signal(quiet_speech, 5.0, 6.0, rate)
    assert has_no_signal(quiet_speech, 1.9, 6.0, rate)  # begins inside, over silence
    assert not has_no_signal(quiet_speech, 0.5, 6.0, rate)  # begins inside, over speech
