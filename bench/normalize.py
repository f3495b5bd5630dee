"""A text normaliser for scoring: the same sentence written two ways should score the same.

Whisper writes "Today, only platforms 1 and 3 are used." where the reference says "one and
three"; LJ Speech references say "fourteen fifty-five" where Whisper writes "1455". The scoring
rules in ../shared/eval/README.md count those as errors. `normalize(text, language)` rewrites
a text into one canonical form; `bench.eval --normalise` applies it to BOTH the reference and
the hypothesis (never to one side: that would be cheating) before `devsupport.scoring` scores them.

Canonical choices:
- English: digits are spelled out as words ("15th" -> "fifteenth", "1,000" -> "one thousand",
  "$5" -> "five dollars", "5%" -> "five percent", "3.5" -> "three point five"); four-digit
  numbers from 1100 to 1999 read as years ("1455" -> "fourteen fifty five"), as LJ Speech and
  FLEURS references do; "and" inside a number and "a hundred" are canonicalised; common
  contractions are expanded ("don't" -> "do not"); hyphens become spaces; a few British
  spellings become American ones (Whisper writes American).
- Korean: Arabic digits become Sino-Korean readings ("15" -> "십오", "2024년" -> "이천이십사년"),
  except before native counters (개, 명, 살, 시, 시간, 마리, ...) where 1-99 take the native
  reading ("3시" -> "세시", "2개" -> "두개"); "%" -> "퍼센트". Spaces do not matter for Korean
  (CER removes them).

The output has no digits left, so normalising twice changes nothing (idempotent).
"""

from __future__ import annotations

import re
import unicodedata

# --- English numbers ------------------------------------------------------------------------------

_ONES = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]
_TEENS = [
    "ten",
    "eleven",
    "twelve",
    "thirteen",
    "fourteen",
    "fifteen",
    "sixteen",
    "seventeen",
    "eighteen",
    "nineteen",
]
_TENS = ["_", "_", "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety"]
_SCALES = [(10**12, "trillion"), (10**9, "billion"), (10**6, "million"), (1000, "thousand")]
_ORDINAL_IRREGULAR = {
    "one": "first",
    "two": "second",
    "three": "third",
    "five": "fifth",
    "eight": "eighth",
    "nine": "ninth",
    "twelve": "twelfth",
}
_NUMBER_WORDS = set(_ONES + _TEENS + _TENS[2:] + ["hundred"] + [s for _, s in _SCALES])


def _below_thousand(n: int) -> list[str]:
    words: list[str] = []
    hundreds, rest = divmod(n, 100)
    if hundreds:
        words += [_ONES[hundreds], "hundred"]
    if rest >= 20:
        words.append(_TENS[rest // 10])
        if rest % 10:
            words.append(_ONES[rest % 10])
    elif rest >= 10:
        words.append(_TEENS[rest - 10])
    elif rest or not words:
        words.append(_ONES[rest])
    return words


def cardinal(n: int) -> str:
    """12345 -> "twelve thousand three hundred forty five" (no "and", no hyphens)."""
    if n == 0:
        return "zero"
    words: list[str] = []
    for value, name in _SCALES:
        if n >= value:
            words += [*_below_thousand(n // value), name]
            n %= value
    if n:
        words += _below_thousand(n)
    return " ".join(words)


def year(n: int) -> str:
    """1455 -> "fourteen fifty five", 1900 -> "nineteen hundred", 1905 -> "nineteen oh five"."""
    high, low = divmod(n, 100)
    if low == 0:
        return f"{cardinal(high)} hundred"
    if low < 10:
        return f"{cardinal(high)} oh {_ONES[low]}"
    return f"{cardinal(high)} {cardinal(low)}"


def ordinal(n: int) -> str:
    """21 -> "twenty first"."""
    words = cardinal(n).split()
    last = words[-1]
    if last in _ORDINAL_IRREGULAR:
        words[-1] = _ORDINAL_IRREGULAR[last]
    elif last.endswith("y"):
        words[-1] = last[:-1] + "ieth"
    else:
        words[-1] = last + "th"
    return " ".join(words)


def _plural(words: str) -> str:
    """ "nineteen sixty" -> "nineteen sixties" (for "1960s")."""
    head, _, last = words.rpartition(" ")
    last = last[:-1] + "ies" if last.endswith("y") else last + "s"
    return f"{head} {last}".strip()


def _digits(text: str) -> str:
    return " ".join(_ONES[int(d)] for d in text)


def _integer_words(text: str) -> str:
    """An integer as it is usually read: years as years, leading zeros digit by digit."""
    plain = text.replace(",", "")
    if (len(plain) > 1 and plain.startswith("0")) or len(plain) > 15:
        return _digits(plain)
    n = int(plain)
    if "," not in text and len(plain) == 4 and 1100 <= n <= 1999:
        return year(n)
    return cardinal(n)


def _number_words(text: str) -> str:
    """ "1,234" / "3.05" / "1455" as words."""
    whole, _, fraction = text.partition(".")
    words = _integer_words(whole) if whole else "zero"
    return f"{words} point {_digits(fraction)}" if fraction else words


_NUMBER = r"\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:\.\d+)?|\.\d+"
_SCALE = r"(?:\s+(thousand|million|billion|trillion))?"
_CURRENCY = {"$": ("dollar", "cent"), "£": ("pound", "penny"), "€": ("euro", "cent")}


def _money(match: re.Match[str]) -> str:
    unit, minor = _CURRENCY[match.group(1)]
    amount, scale = match.group(2), match.group(3)
    if scale:  # "$5 million" -> "five million dollars"
        return f"{_number_words(amount)} {scale} {unit}s"
    whole, _, cents = amount.partition(".")
    words = f"{_integer_words(whole or '0')} {unit}" + ("" if whole == "1" else "s")
    if len(cents) == 2 and int(cents):
        plural = "pence" if minor == "penny" else f"{minor}s"
        words += f" {cardinal(int(cents))} {minor if cents == '01' else plural}"
    else:
        words = _number_words(amount) + f" {unit}s" if cents else words
    return words


_CONTRACTIONS = [
    (r"\bcan['’]t\b", "can not"),
    (r"\bwon['’]t\b", "will not"),
    (r"\bshan['’]t\b", "shall not"),
    (r"\bain['’]t\b", "is not"),
    (r"\b(\w+)n['’]t\b", r"\1 not"),
    (r"\bi['’]m\b", "i am"),
    (r"\b(\w+)['’]re\b", r"\1 are"),
    (r"\b(\w+)['’]ve\b", r"\1 have"),
    (r"\b(\w+)['’]ll\b", r"\1 will"),
    (r"\b(let)['’]s\b", r"\1 us"),
    (r"\bcannot\b", "can not"),
]
# Whisper writes American spelling; FLEURS references are sometimes British.
_BRITISH = {
    f"{stem}{ending}": f"{american}{ending}"
    for stem, american in [
        ("colour", "color"),
        ("favour", "favor"),
        ("honour", "honor"),
        ("labour", "labor"),
        ("neighbour", "neighbor"),
        ("splendour", "splendor"),
        ("behaviour", "behavior"),
        ("humour", "humor"),
        ("flavour", "flavor"),
        ("harbour", "harbor"),
        ("rumour", "rumor"),
        ("vigour", "vigor"),
        ("armour", "armor"),
        ("endeavour", "endeavor"),
        ("centre", "center"),
        ("theatre", "theater"),
        ("metre", "meter"),
        ("litre", "liter"),
        ("organise", "organize"),
        ("realise", "realize"),
        ("recognise", "recognize"),
        ("analyse", "analyze"),
        ("travelled", "traveled"),
        ("travelling", "traveling"),
        ("grey", "gray"),
    ]
    for ending in ("", "s", "d", "ed", "ing", "ful")
}
_WORDS = {**_BRITISH, "mister": "mr", "okay": "ok"}


def _english(text: str) -> str:
    text = text.lower()
    for pattern, replacement in _CONTRACTIONS:
        text = re.sub(pattern, replacement, text)
    text = re.sub(rf"([$£€])\s?({_NUMBER}){_SCALE}", _money, text)
    text = re.sub(rf"({_NUMBER})\s?%", lambda m: f"{_number_words(m.group(1))} percent", text)
    text = re.sub(
        r"(\d{1,3}(?:,\d{3})+|\d+)\s?(st|nd|rd|th)\b",
        lambda m: ordinal(int(m.group(1).replace(",", ""))),
        text,
    )
    text = re.sub(r"(\d+)['’]?s\b", lambda m: _plural(_integer_words(m.group(1))), text)
    text = re.sub(_NUMBER, lambda m: f" {_number_words(m.group(0))} ", text)
    # Hyphens and dashes between words are spaces (the scorer agrees; doing it here lets the
    # number-word rules below see "forty-two" as two words).
    text = re.sub(r"[-‐‑‒–—]", " ", text)
    words = text.split()
    out: list[str] = []
    for i, word in enumerate(words):
        bare = word.strip(".,;:!?\"'()")
        following = words[i + 1].strip(".,;:!?\"'()") if i + 1 < len(words) else ""
        # "a hundred" -> "one hundred"; "one hundred and five" -> "one hundred five".
        if bare == "a" and following in ("hundred", "thousand", "million", "billion"):
            word = "one"
        elif (
            bare == "and"
            and out
            and out[-1] in ("hundred", "thousand", "million", "billion", "trillion")
            and following in _NUMBER_WORDS
        ):
            continue
        out.append(word.replace(bare, _WORDS[bare]) if bare in _WORDS else word)
    # Numbers were padded with spaces; keep punctuation against the word before it.
    return re.sub(r"\s+([.,;:!?])", r"\1", " ".join(out))


# --- Korean numbers -------------------------------------------------------------------------------

_KO_DIGITS = ["", "일", "이", "삼", "사", "오", "육", "칠", "팔", "구"]
_KO_SMALL = [(1000, "천"), (100, "백"), (10, "십")]
_KO_LARGE = [(10**16, "경"), (10**12, "조"), (10**8, "억"), (10**4, "만")]
# Native readings as they stand before a counter (한 개, 두 명, 스무 살).
_KO_NATIVE_ONES = ["", "한", "두", "세", "네", "다섯", "여섯", "일곱", "여덟", "아홉"]
_KO_NATIVE_TENS = ["", "열", "스물", "서른", "마흔", "쉰", "예순", "일흔", "여든", "아흔"]
# Counters read with native numbers for 1-99 (Sino-Korean above). "시" (o'clock) only 1-12.
_KO_NATIVE_COUNTERS = (
    "시간",
    "번째",
    "가지",
    "군데",
    "마리",
    "켤레",
    "개월",  # Sino-Korean in fact ("삼 개월"): listed so that it is NOT read as 개 + 월
    "개",
    "명",
    "살",
    "시",
    "잔",
    "권",
    "병",
    "벌",
    "그릇",
    "사람",
    "달",
    "곳",
)


def _ko_below_10000(n: int) -> str:
    out = ""
    for value, name in _KO_SMALL:
        digit, n = divmod(n, value)
        if digit:
            out += ("" if digit == 1 else _KO_DIGITS[digit]) + name
    return out + _KO_DIGITS[n]


def sino_korean(n: int) -> str:
    """2024 -> "이천이십사", 15 -> "십오", 10000 -> "만", 0 -> "영"."""
    if n == 0:
        return "영"
    out = ""
    for value, name in _KO_LARGE:
        group, n = divmod(n, value)
        if group:
            # 10000 is "만", not "일만"; 100000000 is "일억".
            out += ("" if group == 1 and name == "만" else _ko_below_10000(group)) + name
    return out + _ko_below_10000(n)


def native_korean(n: int) -> str:
    """1-99 as they stand before a counter: 1 -> "한", 20 -> "스무", 21 -> "스물한"."""
    if n == 20:
        return "스무"
    return _KO_NATIVE_TENS[n // 10] + _KO_NATIVE_ONES[n % 10]


def _ko_number(text: str) -> str:
    whole, _, fraction = text.replace(",", "").partition(".")
    words = sino_korean(int(whole)) if whole else "영"
    if (len(whole) > 1 and whole.startswith("0")) or len(whole) > 20:
        words = "".join(_KO_DIGITS[int(d)] or "영" for d in whole)
    if fraction:
        words += "점" + "".join(_KO_DIGITS[int(d)] or "영" for d in fraction)
    return words


def _ko_counted(match: re.Match[str]) -> str:
    number, counter = match.group(1), match.group(2)
    n = int(number) if number.isdigit() else -1
    limit = 12 if counter == "시" else 99
    if counter == "개월" or not 1 <= n <= limit or number.startswith("0"):
        return _ko_number(number) + counter
    if counter == "번째" and n == 1:
        return "첫" + counter
    return native_korean(n) + counter


def _korean(text: str) -> str:
    text = re.sub(r"\$\s?(" + _NUMBER + ")", lambda m: _ko_number(m.group(1)) + "달러", text)
    text = re.sub(r"(" + _NUMBER + r")\s?%", lambda m: _ko_number(m.group(1)) + "퍼센트", text)
    counters = "|".join(_KO_NATIVE_COUNTERS)
    text = re.sub(rf"(\d+)\s?({counters})", _ko_counted, text)
    text = re.sub(_NUMBER, lambda m: _ko_number(m.group(0)), text)
    return " ".join(text.split())


def normalize(text: str, language: str) -> str:
    """The text in canonical form for `language`; apply to reference and hypothesis alike."""
    text = unicodedata.normalize("NFKC", text)
    if language == "ko":
        return _korean(text)
    if language == "en":
        return _english(text)
    return text
