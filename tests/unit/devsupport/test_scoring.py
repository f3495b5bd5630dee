"""devsupport.scoring: normalisation and error rates as ../shared/eval/README.md defines them.

Expected values are worked out by hand in the comments.
"""

from __future__ import annotations

import pytest

from devsupport.scoring import Score, edit_distance, normalize, pooled, score, units

# --- normalisation -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # lowercase
        ("Hello World", "hello world"),
        # punctuation to spaces, spaces collapsed
        ("Hello, world!", "hello world"),
        ("well-known", "well known"),
        ("e.g. this", "e g this"),
        ("wait...what?!", "wait what"),
        ('"quoted" (aside) [note] {x}', "quoted aside note x"),
        ("a—b–c", "a b c"),  # em and en dash
        ("«bonjour»", "bonjour"),
        # symbols to spaces
        ("$5 + 3% = x", "5 3 x"),
        ("a&b@c#d", "a b c d"),
        ("smile 😀 now", "smile now"),
        ("a`b^c", "a b c"),
        # apostrophes dropped, not spaced
        ("Don't", "dont"),
        ("it’s", "its"),  # U+2019
        ("‘quote’", "quote"),  # U+2018 / U+2019
        ("rock ʼn roll", "rock n roll"),  # U+02BC
        ("l＇eau", "leau"),  # fullwidth apostrophe, NFKC -> "'"
        # whitespace collapsed and trimmed
        ("  several \t spaces\n\nhere  ", "several spaces here"),
        ("", ""),
        ("?!.,", ""),
        # NFKC
        ("ＡＢＣ１２３", "abc123"),  # fullwidth
        ("ﬁne", "fine"),  # ligature
        ("①", "1"),
        ("x²", "x2"),
        ("A\u0308", "ä"),  # decomposed umlaut composes
        ("Straße", "straße"),  # lower, not casefold
        # Korean: punctuation out, spaces kept (CER removes them later)
        ("안녕하세요, 세계!", "안녕하세요 세계"),
        ("ＫＢＳ 뉴스입니다.", "kbs 뉴스입니다"),
        # numbers are not normalised
        ("15th", "15th"),
        ("3.5", "3 5"),
    ],
)
def test_normalize(text: str, expected: str) -> None:
    assert normalize(text) == expected


def test_normalize_is_idempotent() -> None:
    text = "«Don’t» stop — ＮＯＷ!! 안녕, 세계."
    assert normalize(normalize(text)) == normalize(text) == "dont stop now 안녕 세계"


# --- units ---------------------------------------------------------------------------------------


def test_units_english_words() -> None:
    assert units("Hello, my friend's dog!", "en") == ["hello", "my", "friends", "dog"]


@pytest.mark.parametrize("language", ["ko", "ja", "zh"])
def test_units_cjk_characters_without_spaces(language: str) -> None:
    assert units("안녕 하세요, 세계!", language) == ["안", "녕", "하", "세", "요", "세", "계"]


def test_units_other_languages_are_words() -> None:
    assert units("Guten Tag, Welt!", "de") == ["guten", "tag", "welt"]


# --- edit distance -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("ref", "hyp", "expected"),
    [
        ("", "", 0),
        ("abc", "", 3),
        ("", "abc", 3),
        ("abc", "abc", 0),
        ("kitten", "sitting", 3),  # k->s, e->i, +g
        ("flaw", "lawn", 2),  # -f, +n
        ("abcd", "acbd", 2),  # no transpositions
    ],
)
def test_edit_distance(ref: str, hyp: str, expected: int) -> None:
    assert edit_distance(list(ref), list(hyp)) == expected
    assert edit_distance(list(hyp), list(ref)) == expected


# --- WER -----------------------------------------------------------------------------------------

REF = "The cat sat on the mat."  # 6 words


def test_wer_exact_match_after_normalisation() -> None:
    assert score(REF, "the CAT sat, on the mat!", "en") == Score(0, 6)
    assert score(REF, "the CAT sat, on the mat!", "en").rate == 0.0


def test_wer_substitution() -> None:
    result = score(REF, "the cat sit on the mat", "en")  # sat -> sit
    assert result == Score(1, 6)
    assert result.rate == pytest.approx(1 / 6)


def test_wer_insertion() -> None:
    assert score(REF, "the big cat sat on the mat", "en") == Score(1, 6)  # +big


def test_wer_deletion() -> None:
    assert score(REF, "the cat sat on mat", "en") == Score(1, 6)  # -the


def test_wer_mixed() -> None:
    # the cat sat on the mat / a cat sat on mat today: the->a, -the, +today
    result = score(REF, "A cat sat on mat today.", "en")
    assert result == Score(3, 6)
    assert result.rate == 0.5


def test_wer_can_exceed_one() -> None:
    result = score("yes", "no no no", "en")  # yes->no, +no, +no
    assert result == Score(3, 1)
    assert result.rate == 3.0


def test_wer_apostrophes_and_numbers() -> None:
    assert score("don't go", "dont go", "en") == Score(0, 2)
    assert score("the fifteenth", "the 15th", "en") == Score(1, 2)


# --- CER (Korean) --------------------------------------------------------------------------------


def test_korean_cer_ignores_spaces() -> None:
    # 안녕하세요 세계 -> 7 characters
    assert score("안녕하세요 세계", "안녕 하세요세계", "ko") == Score(0, 7)
    assert score("안녕하세요 세계.", "안녕하세요세계", "ko") == Score(0, 7)


def test_korean_cer_substitution_insertion_deletion() -> None:
    ref = "안녕하세요 세계"
    assert score(ref, "안녕하세여 세계", "ko") == Score(1, 7)  # 요->여
    assert score(ref, "안녕하세요 세계요", "ko") == Score(1, 7)  # +요
    assert score(ref, "안녕세요 세계", "ko") == Score(1, 7)  # -하
    result = score(ref, "안녕 하시오 세상", "ko")  # 세->시, 요->오, 계->상
    assert result == Score(3, 7)
    assert result.rate == pytest.approx(3 / 7)


def test_korean_is_not_scored_by_words() -> None:
    # Word-level this would be 2 edits of 2 words; character-level it is 1 of 7.
    assert score("안녕하세요 세계", "안녕하세여 세계", "en") == Score(1, 2)
    assert score("안녕하세요 세계", "안녕하세여 세계", "ko") == Score(1, 7)


# --- pooling and empty references ----------------------------------------------------------------


def test_pooled_is_total_edits_over_total_units() -> None:
    scores = [Score(1, 6), Score(2, 4), Score(0, 10)]
    total = pooled(scores)
    assert total == Score(3, 20)
    assert total.rate == 0.15
    # Not the mean of per-item rates.
    mean = sum(s.rate for s in scores) / len(scores)
    assert mean == pytest.approx(0.2222, abs=1e-4)
    assert total.rate != pytest.approx(mean)


def test_pooled_accepts_a_generator_and_nothing() -> None:
    assert pooled(score(r, h, "en") for r, h in [("a b", "a c"), ("c d e", "c d e")]) == Score(1, 5)
    assert pooled([]) == Score(0, 0)
    assert pooled([]).rate == 0.0


def test_empty_reference() -> None:
    assert score("", "", "en") == Score(0, 0)
    assert score("", "", "en").rate == 0.0
    assert score("...", "", "ko") == Score(0, 0)
    # Insertions against an empty reference are counted as edits; the per-item rate has no
    # denominator and is reported as 0.0, but pooling keeps the edits.
    inserted = score("", "hello there", "en")
    assert inserted == Score(2, 0)
    assert inserted.rate == 0.0
    assert pooled([inserted, Score(0, 8)]).rate == 0.25


def test_empty_hypothesis_is_all_deletions() -> None:
    assert score(REF, "", "en") == Score(6, 6)
    assert score(REF, "", "en").rate == 1.0


# --- known pairs from the shared clips -----------------------------------------------------------


def test_known_pairs_from_the_shared_clips() -> None:
    # en_pv_cheetah_test, Whisper base: one->1, three->3 (numbers are not normalised here).
    assert score(
        "Today only platforms one and three are used.",
        "Today, only platforms 1 and 3 are used.",
        "en",
    ) == Score(2, 8)
    # ko_deeply_sub100102a00085: the first word 책을 (2 characters) was not heard.
    assert score(
        "책을 좀 빌리고 싶은데 어떻게 해야 되나요?", "좀 빌리고 싶은데 어떻게 해야 되나요?", "ko"
    ) == Score(2, 17)
    # ko_deeply_sub100121a00060: only the spacing differs.
    assert score(
        "시계는 작년에 사 드렸어요. 다른 건 없을까요?",
        "시계는 작년에 사드렸어요. 다른 건 없을까요?",
        "ko",
    ) == Score(0, 18)


def test_korean_empty_reference_and_mixed_scripts() -> None:
    assert score("", "안녕", "ko") == Score(2, 0)
    assert score("", "", "ko").rate == 0.0
    # Latin letters and digits inside Korean are characters too: 2주 -> 2 units.
    assert score("2주 후", "이주 후", "ko") == Score(1, 3)
    assert units("KBS 뉴스", "ko") == ["k", "b", "s", "뉴", "스"]
