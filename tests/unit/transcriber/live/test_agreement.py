"""Interim stability: LocalAgreement-2 between successive decodes of one utterance."""

from __future__ import annotations

from services.transcriber.live.agreement import Agreement, common_prefix, cut_loop, units


def test_the_first_decode_is_not_settled_at_all() -> None:
    result = Agreement("en").update("and so my fellow")
    assert result.text == "and so my fellow"
    assert result.stability == 0.0 and result.settled == ""


def test_words_two_decodes_agree_on_settle_but_not_the_last_one() -> None:
    agreement = Agreement("en")
    agreement.update("And so my fellow America")
    result = agreement.update("And so my fellow Americans, ask")
    # "America" vs "Americans," differ; the agreed prefix is "And so my fellow".
    assert result.settled == "And so my fellow"
    assert result.text == "And so my fellow Americans, ask"
    assert result.stability == round(len("And so my fellow") / len(result.text), 3)


def test_a_repeated_last_word_settles_only_once_a_decode_goes_beyond_it() -> None:
    agreement = Agreement("en")
    agreement.update("ask not")
    assert agreement.update("ask not").settled == "ask"
    assert agreement.update("ask not what").settled == "ask not"


def test_settled_words_are_never_taken_back_by_a_later_decode() -> None:
    agreement = Agreement("en")
    agreement.update("ask not what your")
    agreement.update("ask not what your country")
    assert agreement.update("ask not what your country").settled == "ask not what your"
    # A later decode that reads the start differently keeps the settled words, then its tail.
    result = agreement.update("asked knot what your country can do")
    assert result.settled == "ask not what your"
    assert result.text == "ask not what your country can do"
    assert 0 < result.stability < 1


def test_comparison_ignores_case_and_punctuation() -> None:
    assert common_prefix(["And", "so,", "my"], ["and", "so", "my!"]) == 3
    assert common_prefix(["ask", "not"], ["ask", "what"]) == 1


def test_languages_without_spaces_agree_character_by_character() -> None:
    assert units("我们 去", "zh") == ["我", "们", "去"]
    agreement = Agreement("zh")
    agreement.update("我们去学")
    result = agreement.update("我们去学校吧")
    assert result.settled == "我们去学"  # the previous last character, now gone beyond
    assert result.text == "我们去学校吧"


def test_korean_is_compared_by_words() -> None:
    agreement = Agreement("ko")
    agreement.update("그는 일 위절이")
    result = agreement.update("그는 일 위절이 피하면서")
    assert result.settled == "그는 일 위절이"
    assert result.text == "그는 일 위절이 피하면서"


def test_stability_stays_within_bounds_on_empty_text() -> None:
    agreement = Agreement("en")
    assert agreement.update("").stability == 0.0
    assert agreement.update("   ").text == ""


def test_a_looping_decode_is_cut_where_the_loop_begins() -> None:
    looping = "Today only platforms one in today only platforms one in today only platforms"
    assert cut_loop(looping.split()) == ["Today", "only", "platforms", "one", "in"]
    assert cut_loop(["no", "no", "no", "no", "no"]) == ["no"]
    assert cut_loop(["no", "no", "no"]) == ["no", "no", "no"]  # three times may be meant
    assert cut_loop(["ask", "not", "what", "your", "country"]) == [
        "ask",
        "not",
        "what",
        "your",
        "country",
    ]
    result = Agreement("en").update(
        "그는 1절이 피하면서 그는 1절이 피하면서 그는 1절이 피하면서 그는"
    )
    assert result.text == "그는 1절이 피하면서"
