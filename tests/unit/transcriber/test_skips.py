"""Finding speech a segment claims but never wrote (services/transcriber/skips.py)."""

from __future__ import annotations

import pytest

from services.transcriber import skips

# The VAD's spans of 14.9 s of joined Korean whose first segment was stamped 0.10-9.10 s with
# only its first sentence (19 syllables over ~7.2 s of speech).
SPANS = [(0.504, 3.56), (4.568, 8.744), (9.112, 14.472)]
FIRST = "그는 1위절이 피하면서 길 한 옆으로 걸어갔다."


def test_a_segment_with_too_few_letters_for_its_speech_is_decoded_again_from_its_second_span() -> (
    None
):
    span = skips.skipped_span(0.10, 9.10, FIRST, SPANS, "ko", lead_seconds=0.4)
    assert span == pytest.approx((4.168, 9.10))


def test_the_lead_never_reaches_back_into_the_first_span() -> None:
    span = skips.skipped_span(0.10, 9.10, FIRST, SPANS, "ko", lead_seconds=2.0)
    assert span == pytest.approx((3.56, 9.10))


def test_a_segment_that_wrote_all_its_speech_is_left_alone() -> None:
    both = FIRST + " 필기시험은 늘 합격하는데, 면접만 보면 꼭 떨어지네."
    assert skips.skipped_span(0.10, 9.10, both, SPANS, "ko") is None


def test_a_segment_inside_one_span_is_left_alone_however_slow() -> None:
    assert skips.skipped_span(9.10, 14.10, "네.", SPANS, "ko") is None


def test_little_speech_after_the_first_span_is_not_worth_decoding_again() -> None:
    spans = [(0.0, 4.0), (4.5, 5.2)]
    assert skips.skipped_span(0.0, 5.2, "네.", spans, "ko") is None


def test_languages_without_a_measured_floor_are_not_checked() -> None:
    assert skips.skipped_span(0.10, 9.10, "Hola.", SPANS, "es") is None


def test_english_has_its_own_floor() -> None:
    spans = [(0.0, 3.0), (3.6, 8.0)]
    assert skips.skipped_span(0.0, 8.0, "And so my fellow Americans.", spans, "en") is not None
    sentence = "And so my fellow Americans, ask not what your country can do for you."
    assert skips.skipped_span(0.0, 8.0, sentence, spans, "en") is None


def test_letters_leave_out_spaces_and_punctuation() -> None:
    assert skips.letters("네, 신입 사원의 2주!") == "네신입사원의2주"


@pytest.mark.parametrize(
    ("text", "original", "expected"),
    [
        ("필기시험은 늘 합격하는데", FIRST, False),
        ("길 한 옆으로 걸어갔다", FIRST, True),
        ("...", FIRST, True),
        ("옆으로 걸어갔다. 필기시험은 늘 합격하는데 면접만 보면", FIRST, False),
    ],
)
def test_a_decoded_again_segment_that_repeats_the_original_is_dropped(
    text: str, original: str, expected: bool
) -> None:
    assert skips.repeats(text, original) is expected
