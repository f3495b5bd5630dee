"""bench.normalize: the same sentence written two ways scores the same; applied to both sides.

The pairs come from what Whisper base writes on the shared clips against their references
(digits vs words, years, hyphens, commas) and from the cases the brief names.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from bench import eval as bench_eval
from bench.eval_backends import Transcription
from bench.normalize import cardinal, native_korean, normalize, ordinal, sino_korean, year
from devsupport import scoring
from devsupport.evalset import Clip


def same(a: str, b: str, language: str) -> bool:
    """Both sides normalised, then scored as the README says: no edits left."""
    return scoring.score(normalize(a, language), normalize(b, language), language).edits == 0


# --- English: pairs that must score as equal ------------------------------------------------------

ENGLISH_PAIRS = [
    # seen on the shared clips (reference, Whisper base)
    ("Today only platforms one and three are used.", "Today, only platforms 1 and 3 are used."),
    ('the Gutenberg, or \\"forty-two line Bible\\"', 'the Gutenberg, or "42 line Bible"'),
    ("of about fourteen fifty-five, has never", "of about 1455, has never"),
    ("in the year fourteen sixty-two)", "in the year 1462"),
    ("in the fifteenth century", "in the 15th century"),
    ("the next fifteen or twenty years", "the next 15 or 20 years"),
    ("could lag behind by 25 to 30 year", "could lag behind by twenty five to thirty year"),
    # ordinals
    ("the first, second and third", "the 1st, 2nd and 3rd"),
    ("the twenty-first of May", "the 21st of May"),
    ("his one hundredth birthday", "his 100th birthday"),
    ("the twelfth night", "the 12th night"),
    # cardinals, thousands separators, "and" and "a hundred"
    ("one thousand people", "1,000 people"),
    ("a hundred people", "100 people"),
    ("one hundred and fifty", "150"),
    ("two thousand and five hundred", "2,500"),
    ("three million two hundred thousand", "3,200,000"),
    ("zero", "0"),
    # money and percent
    ("five dollars", "$5"),
    ("one dollar", "$1"),
    ("five dollars fifty cents", "$5.50"),
    ("two point five million dollars", "$2.5 million"),
    ("ten percent", "10%"),
    ("ten percent", "10 %"),
    ("three point five percent", "3.5%"),
    ("twenty pounds", "£20"),
    # decimals, years, decades, leading zeros
    ("three point one four", "3.14"),
    ("nineteen hundred", "1900"),
    ("nineteen oh five", "1905"),
    ("in the nineteen sixties", "in the 1960s"),
    ("in the nineteen sixties", "in the 1960's"),
    ("agent zero zero seven", "agent 007"),
    ("two thousand twenty four", "2024"),
    # contractions
    ("I do not know", "I don't know"),
    ("it will not", "it won't"),
    ("we can not", "we can't"),
    ("we cannot", "we can't"),
    ("they are here", "they're here"),
    ("I am here", "I’m here"),  # typographic apostrophe
    ("we have been", "we've been"),
    ("she will go", "she'll go"),
    ("let us go", "let's go"),
    # hyphens, dashes, British spelling, titles
    ("well-known", "well known"),
    ("wait—what", "wait what"),
    ("the colour of his splendours", "the color of his splendors"),
    ("Mister Quilter", "Mr. Quilter"),
]


@pytest.mark.parametrize(("reference", "hypothesis"), ENGLISH_PAIRS)
def test_english_pairs_score_as_equal(reference: str, hypothesis: str) -> None:
    assert same(reference, hypothesis, "en"), (
        normalize(reference, "en"),
        normalize(hypothesis, "en"),
    )


@pytest.mark.parametrize(
    ("reference", "hypothesis"),
    [
        ("one and three", "1 and 4"),
        ("fifteenth", "16th"),
        ("five dollars", "$6"),
        ("fourteen fifty five", "1456"),
        ("lower-case", "lowercase"),  # closed vs open compounds stay an error
        ("the cat", "the cats"),
    ],
)
def test_english_real_differences_remain(reference: str, hypothesis: str) -> None:
    assert not same(reference, hypothesis, "en")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("15th", "fifteenth"),
        ("1,000", "one thousand"),
        ("$5", "five dollars"),
        ("5%", "five percent"),
        ("It's 1455.", "it's fourteen fifty five."),
        ("forty-two", "forty two"),
    ],
)
def test_english_canonical_form(text: str, expected: str) -> None:
    assert normalize(text, "en") == expected


@pytest.mark.parametrize(
    ("n", "words"),
    [
        (0, "zero"),
        (7, "seven"),
        (13, "thirteen"),
        (40, "forty"),
        (99, "ninety nine"),
        (101, "one hundred one"),
        (1000, "one thousand"),
        (1001, "one thousand one"),
        (
            123456789,
            "one hundred twenty three million four hundred fifty six thousand seven "
            "hundred eighty nine",
        ),
    ],
)
def test_cardinal(n: int, words: str) -> None:
    assert cardinal(n) == words


def test_ordinal_and_year() -> None:
    assert [ordinal(n) for n in (1, 2, 3, 4, 5, 8, 9, 12, 20, 21, 100)] == [
        "first", "second", "third", "fourth", "fifth", "eighth", "ninth", "twelfth",
        "twentieth", "twenty first", "one hundredth",
    ]  # fmt: skip
    assert [year(n) for n in (1455, 1900, 1905, 1999)] == [
        "fourteen fifty five", "nineteen hundred", "nineteen oh five", "nineteen ninety nine",
    ]  # fmt: skip


# --- Korean ---------------------------------------------------------------------------------------

KOREAN_PAIRS = [
    # Sino-Korean readings
    ("십오", "15"),
    ("이천이십사년", "2024년"),
    ("이천이십사 년 삼월 십오일", "2024년 3월 15일"),
    ("신입 사원의 사원증은 이주 후에 나옵니다", "신입사원의 사원증은 2주 후에 나옵니다."),
    ("만 원", "10,000원"),
    ("만 원", "10000원"),
    ("십만 원", "100,000원"),
    ("일억", "100000000"),
    ("백 페이지", "100페이지"),
    ("삼점오", "3.5"),
    ("오십 퍼센트", "50%"),
    ("오 달러", "$5"),
    ("영", "0"),
    ("삼 개월", "3개월"),
    ("오 분", "5분"),
    ("십삼 시", "13시"),
    # native counters
    ("세 시", "3시"),
    ("세 시간", "3시간"),
    ("사과 두 개", "사과 2개"),
    ("다섯 명", "5명"),
    ("스무 살", "20살"),
    ("스물한 살", "21살"),
    ("첫 번째", "1번째"),
    ("두 번째", "2번째"),
    ("커피 한 잔", "커피 1잔"),
    ("고양이 세 마리", "고양이 3마리"),
    # spacing and punctuation only
    ("시계는 작년에 사 드렸어요.", "시계는 작년에 사드렸어요"),
    ("아니요, 괜찮아요.", "아니요 괜찮아요"),
]


@pytest.mark.parametrize(("reference", "hypothesis"), KOREAN_PAIRS)
def test_korean_pairs_score_as_equal(reference: str, hypothesis: str) -> None:
    assert same(reference, hypothesis, "ko"), (
        normalize(reference, "ko"),
        normalize(hypothesis, "ko"),
    )


@pytest.mark.parametrize(
    ("reference", "hypothesis"),
    [("십오", "16"), ("세 시", "4시"), ("이리저리", "1위절이"), ("두 개", "3개")],
)
def test_korean_real_differences_remain(reference: str, hypothesis: str) -> None:
    assert not same(reference, hypothesis, "ko")


def test_sino_and_native_korean() -> None:
    assert [sino_korean(n) for n in (1, 10, 11, 20, 100, 110, 1000, 10000, 12345, 20000)] == [
        "일", "십", "십일", "이십", "백", "백십", "천", "만", "만이천삼백사십오", "이만",
    ]  # fmt: skip
    assert sino_korean(100_000_000) == "일억"
    assert sino_korean(150_000_000) == "일억오천만"
    assert [native_korean(n) for n in (1, 2, 3, 4, 10, 20, 21, 99)] == [
        "한", "두", "세", "네", "열", "스무", "스물한", "아흔아홉",
    ]  # fmt: skip


# --- idempotence, other languages, both sides -----------------------------------------------------

SAMPLES = [
    *(text for pair in ENGLISH_PAIRS for text in pair),
    "«Don’t» stop — ＮＯＷ!! $1,234.56 and 7%.",
]
KOREAN_SAMPLES = [*(text for pair in KOREAN_PAIRS for text in pair), "2024년 3월 15일 3시 5분"]


@pytest.mark.parametrize(
    ("text", "language"),
    [*((t, "en") for t in SAMPLES), *((t, "ko") for t in KOREAN_SAMPLES)],
)
def test_idempotent(text: str, language: str) -> None:
    once = normalize(text, language)
    assert normalize(once, language) == once
    assert not any(c.isdigit() for c in once)


def test_other_languages_only_get_nfkc() -> None:
    assert normalize("Ｔａｇ 15", "de") == "Tag 15"


def _clip(reference: str, language: str) -> Clip:
    return Clip("c", language, Path("unused.flac"), 2.0, reference)


@pytest.mark.parametrize(
    ("text", "language"), [("Platforms 1 and 3, in 1455.", "en"), ("2024년 3시 2개", "ko")]
)
def test_applied_to_both_sides(text: str, language: str) -> None:
    """A hypothesis identical to its reference scores 0 with or without the normaliser: a
    normaliser applied to one side only would turn it into errors."""
    for normalise in (False, True):
        result = bench_eval.score_clip(_clip(text, language), Transcription(text, 1.0), normalise)
        assert result.edits == 0 and result.reference_units > 0
        expected = normalize(text, language) if normalise else text
        assert result.scored_reference == result.scored_hypothesis == expected
        assert result.reference == result.hypothesis == text


def test_normalise_flag_changes_only_the_scoring() -> None:
    clip = _clip("Today only platforms one and three are used.", "en")
    heard = Transcription("Today, only platforms 1 and 3 are used.", 1.0)
    plain = bench_eval.score_clip(clip, heard, normalise=False)
    normalised = bench_eval.score_clip(clip, heard, normalise=True)
    assert (plain.edits, plain.reference_units) == (2, 8)
    assert (normalised.edits, normalised.reference_units) == (0, 8)
    assert plain.hypothesis == normalised.hypothesis == heard.text
