"""devsupport.transcript_diff: how `make arm64-check` compares the two architectures' texts."""

from __future__ import annotations

from devsupport.transcript_diff import MAX_EDITS, compare


def test_korean_counts_characters_and_ignores_spaces_and_punctuation() -> None:
    diff = compare(
        "그는 이리저리 피하면서 길 한 옆으로 걸어갔다.",
        "그는 이리저리 피하면서 길한옆으로 걸어갔어",
        "ko",
    )
    # 19 characters without spaces; only 다 -> 어 differs
    assert (len(diff.baseline_units), diff.edits) == (19, 1)
    assert diff.unit_name == "characters"
    assert diff.changes() == ["'다' -> '어'"]
    assert diff.problem() is None


def test_english_counts_words_not_case_or_punctuation() -> None:
    diff = compare(
        "Today, only platforms 1 and 3 are used.", "today only platforms one and 3 are used", "en"
    )
    assert (len(diff.baseline_units), diff.edits) == (8, 1)
    assert diff.unit_name == "words"
    assert diff.changes() == ["'1' -> 'one'"]


def test_insertions_and_deletions_are_named() -> None:
    diff = compare("ask not what your country can do", "ask what your country can do for", "en")
    assert diff.edits == 2
    assert diff.changes() == ["-'not'", "+'for'"]


def test_more_than_the_limit_fails_and_says_by_how_much() -> None:
    x86 = "and so my fellow americans ask not"
    limit_edits = compare(x86, "and so my fellow citizens ask now", "en")  # 2 words
    assert limit_edits.problem(max_edits=2) is None
    assert limit_edits.problem(max_edits=1) == "2 words differ (at most 1 allowed)"
    garbled = compare(x86, "the the the the", "en")
    assert garbled.edits > MAX_EDITS
    assert garbled.problem() is not None


def test_an_empty_x86_text_fails_even_when_both_are_empty() -> None:
    # Two empty texts agree, but prove nothing about the arm64 kernels.
    assert compare("", "", "ko").problem() == "the x86-64 transcript is empty"
    assert compare(" . ", "", "en").problem() == "the x86-64 transcript is empty"


def test_identical_texts_have_no_changes() -> None:
    diff = compare("오늘은 좋은 날", "오늘은 좋은 날", "ko")
    assert diff.edits == 0 and diff.changes() == [] and diff.problem() is None
