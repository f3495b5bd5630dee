"""How settled an interim result is: prefix agreement between successive interim decodes.

Read before choosing (issue 19):
- whisper_streaming's LocalAgreement-2 (ufal/whisper_streaming, `HypothesisBuffer`): each new
  hypothesis over the growing buffer is compared word by word with the previous one; the
  longest common prefix is *committed* and never revised, and later hypotheses are only searched
  for text beyond it. Its committed text is its output, so a wrong agreement is a permanent error
  (WhisperLiveKit measured 21-45 % WER with the base model).
- SimulStreaming's AlignAtt: a token is emitted only while the decoder's cross-attention for it
  stays away from the last frames of the audio received (the model would still be guessing about
  a word that is not over yet). It needs the attention weights of every step, which
  CTranslate2's generate does not hand out.
Here the interim text never becomes the final one: every utterance's final result is a fresh
decode of its whole audio with the session's preset (same as a file), so agreement only decides
what an interim result *shows* and how `stability` is reported, and cannot cost accuracy.
The rule is LocalAgreement-2 over the utterance's successive interim decodes (each covers the
utterance from its start): words both of the last two decodes begin with are *settled*; settled
words are shown as settled even when a later decode disagrees (interims never take back settled
text; a final result may); the unsettled tail is the newest decode's words after them. The
last word of a decode is the one still being spoken (AlignAtt's worry), so it settles only
once a later decode repeats it *and* goes on beyond it. `stability` = the settled share of the
shown text, in characters. Words are compared case- and punctuation-blind; languages written
without spaces are compared character by character.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

# Whisper languages written without spaces between words.
_UNSPACED = frozenset({"zh", "ja", "th", "lo", "km", "my", "yue", "bo"})
_PUNCTUATION = re.compile(r"[^\w]+", re.UNICODE)
LOOP_LONGEST = 8


@dataclass(frozen=True)
class Interim:
    text: str
    stability: float  # 0..1
    settled: str  # the settled part of `text`


def units(text: str, language: str) -> list[str]:
    """The units two decodes are compared by: words, or characters for unspaced languages."""
    if language in _UNSPACED:
        return [c for c in text if not c.isspace()]
    return text.split()


def cut_loop(words: list[str]) -> list[str]:
    """The words up to where a greedy decode starts looping, the looping phrase kept once: one
    word said four times in a row, two or three words three times, or a phrase of four to
    LOOP_LONGEST words twice and starting a third time ("Today only platforms one in today only
    platforms one in today only ..." on 2 s of audio)."""
    keys = [_key(w) for w in words]
    for start in range(len(keys)):
        for size in range(1, LOOP_LONGEST + 1):
            times = 4 if size == 1 else 3 if size < 4 else 2
            end = start + size * times
            if end + (size >= 4) > len(keys):
                break
            phrase = keys[start : start + size]
            repeated = all(
                keys[start + k * size : start + (k + 1) * size] == phrase for k in range(times)
            )
            if repeated and (size < 4 or keys[end] == phrase[0]):
                return words[: start + size]
    return words


def _key(unit: str) -> str:
    return _PUNCTUATION.sub("", unicodedata.normalize("NFKC", unit).lower())


def common_prefix(a: list[str], b: list[str]) -> int:
    n = 0
    for x, y in zip(a, b, strict=False):
        if _key(x) != _key(y):
            break
        n += 1
    return n


class Agreement:
    """The interim results of one utterance."""

    def __init__(self, language: str = "") -> None:
        self.language = language
        self._previous: list[str] = []
        self._settled: list[str] = []

    def update(self, text: str, language: str | None = None) -> Interim:
        """The interim result to show for a new decode of the utterance so far."""
        if language:
            self.language = language
        words = cut_loop(units(text.strip(), self.language))
        agreed = common_prefix(self._previous, words)
        # The newest decode's last word may be cut off mid-word: it settles only when a decode
        # goes on beyond it.
        agreed = min(agreed, len(words) - 1)
        if agreed > len(self._settled):
            self._settled = words[:agreed]
        self._previous = words
        tail = words[len(self._settled) :]
        shown = self._settled + tail
        joiner = "" if self.language in _UNSPACED else " "
        settled_text = joiner.join(self._settled)
        shown_text = joiner.join(shown)
        stability = len(settled_text) / len(shown_text) if shown_text else 0.0
        return Interim(shown_text, round(min(1.0, stability), 3), settled_text)
