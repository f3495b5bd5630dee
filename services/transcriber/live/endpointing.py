"""Utterances from frame speech probabilities: a pure state machine (no audio, no clock).

Fed one probability per VAD frame (512 samples at 16 kHz), it returns events:
- `Started`: speech has lasted `min_speech_seconds` (hysteresis: a frame counts as speech at
  `threshold` or above, as silence below `threshold - 0.15`, in between it keeps the current
  state, like Silero's own `get_speech_timestamps`); the utterance's audio begins
  `pad_before_seconds` earlier (never before the previous utterance's end). Inside an
  utterance the silence threshold is lower, `threshold - END_MARGIN` (0.15): Silero scores soft
  Korean sentence endings after earlier speech 0.2-0.44, and below 0.35 they fell after the
  utterance's end and were never decoded (the shared Korean clips at their own levels: CER
  11.9 % live vs 8.7 % Transcribe; with 0.15, 9.6 %; leveled 11.0 -> 10.1 %, English no
  worse). Real silence falls below 0.15 within a frame or two, so endpoints come as soon.
- `Paused`: non-speech has lasted `pad_after_seconds` inside an utterance: the utterance would
  end here if the silence goes on (a session may start its final decode now, speculatively).
- `Resumed`: speech came back after a `Paused`.
- `Ended`: non-speech has lasted `silence_seconds` (an endpoint), or the stream ended, or the
  utterance reached `max_utterance_seconds` of audio. In the last case, when speech goes on,
  it is cut at its best pause (the lowest-probability stretch in its second half) and the next
  utterance `Started` at that same sample, so no audio is lost or decoded twice.
Times are seconds since the first sample; audio bounds are sample indices on that clock.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

import numpy as np

SAMPLE_RATE = 16_000
FRAME_SAMPLES = 512
# Hysteresis below the speech threshold (Silero's neg_threshold): idle, a run of speech frames
# is forgotten below threshold - NEGATIVE_MARGIN.
NEGATIVE_MARGIN = 0.15
# Inside an utterance, speech lasts until the probability falls below threshold - END_MARGIN,
# but never below threshold * END_MIN_RATIO: with a low threshold (0.3) the margin would leave
# nothing above zero, and silence (0.01-0.03 as the VAD hears it, dithered) would never end one.
END_MARGIN = 0.35
END_MIN_RATIO = 0.3
# The best pause is the quietest stretch of this many frames (~0.2 s).
PAUSE_FRAMES = 6


@dataclass(frozen=True)
class EndpointSettings:
    threshold: float = 0.5
    silence_seconds: float = 0.5
    max_utterance_seconds: float = 30.0
    min_speech_seconds: float = 0.15
    # Audio kept before the onset the VAD heard: Whisper reads a soft first syllable the VAD
    # missed. On the shared Korean clips, utterances cut at onset - 0.4 s decoded at 10.4 % CER,
    # at onset - 1.0 s at 9.0 % (the whole clip: 10.4 %); English stayed at 5.3 %.
    pad_before_seconds: float = 1.0
    # ... and after the speech: also how long a pause lasts before the final decode starts
    # speculatively (more only cost latency on the clips: 0.3 and 0.5 s measured no better).
    pad_after_seconds: float = 0.2

    def frames(self, seconds: float) -> int:
        return max(1, round(seconds * SAMPLE_RATE / FRAME_SAMPLES))


@dataclass(frozen=True)
class Started:
    utterance: int
    time: float  # speech onset
    audio_start: int  # sample index where the utterance's audio begins (padding included)


@dataclass(frozen=True)
class Paused:
    utterance: int
    speech_end: int  # sample index where the speech stopped
    audio_end: int  # ... and where the utterance's audio would end (padding included)


@dataclass(frozen=True)
class Resumed:
    utterance: int


@dataclass(frozen=True)
class Ended:
    utterance: int
    time: float  # where the speech ended
    audio_end: int
    cut: bool = False  # cut at max_utterance_seconds, speech goes on in the next utterance


Event = Started | Paused | Resumed | Ended


@dataclass
class _Open:
    number: int
    audio_start: int
    first_frame: int  # the frame of probs[0] (the first whole frame of its audio)
    probs: list[float] = field(default_factory=list)


class Endpointer:
    def __init__(self, settings: EndpointSettings) -> None:
        self.settings = settings
        self._negative = max(settings.threshold - NEGATIVE_MARGIN, 0.01)
        self._end_negative = min(
            self._negative,
            max(settings.threshold - END_MARGIN, settings.threshold * END_MIN_RATIO, 0.01),
        )
        self._min_speech = settings.frames(settings.min_speech_seconds)
        self._silence = settings.frames(settings.silence_seconds)
        self._pause = min(settings.frames(settings.pad_after_seconds), self._silence)
        self._pad_before = round(settings.pad_before_seconds * SAMPLE_RATE)
        self._pad_after = round(settings.pad_after_seconds * SAMPLE_RATE)
        self._max_samples = round(settings.max_utterance_seconds * SAMPLE_RATE)
        self.frame = 0  # frames seen
        self._utterances = 0
        self._open: _Open | None = None
        self._run_start: int | None = None  # idle: first frame of a run of speech
        self._run_frames = 0
        self._silence_start: int | None = None  # open: first frame of a run of non-speech
        self._paused = False
        self._floor = 0  # no utterance's audio starts before this sample
        # Idle frames' probabilities, for the new utterance's padding.
        self._recent: deque[float] = deque(
            maxlen=self._pad_before // FRAME_SAMPLES + self._min_speech + 2
        )

    @property
    def open_utterance(self) -> int | None:
        return self._open.number if self._open else None

    @property
    def in_pause(self) -> bool:
        """An utterance is open and non-speech has lasted at least the pause length."""
        return self._paused

    def push(self, prob: float) -> list[Event]:
        index = self.frame
        self.frame += 1
        if self._open is None:
            self._recent.append(prob)
            return self._idle(index, prob)
        self._open.probs.append(prob)
        return self._speaking(index, prob)

    def push_many(self, probs: np.ndarray | list[float]) -> list[Event]:
        events: list[Event] = []
        for prob in probs:
            events += self.push(float(prob))
        return events

    def flush(self, total_samples: int) -> list[Event]:
        """The stream has ended after `total_samples`: the open utterance ends."""
        if self._open is None:
            return []
        speech_end = (
            self._silence_start * FRAME_SAMPLES
            if self._silence_start is not None
            else total_samples
        )
        audio_end = min(total_samples, speech_end + self._pad_after)
        return [self._close(speech_end, max(audio_end, self._open.audio_start))]

    def _idle(self, index: int, prob: float) -> list[Event]:
        if prob >= self.settings.threshold:
            if self._run_start is None:
                self._run_start = index
                self._run_frames = 0
            self._run_frames += 1
        elif prob < self._negative:
            self._run_start = None
            self._run_frames = 0
        if self._run_start is None or self._run_frames < self._min_speech:
            return []
        onset = self._run_start * FRAME_SAMPLES
        start = max(self._floor, onset - self._pad_before)
        self._utterances += 1
        first_frame = -(-start // FRAME_SAMPLES)
        seen = list(self._recent)[-(index + 1 - first_frame) :] if index >= first_frame else []
        self._open = _Open(self._utterances, start, index + 1 - len(seen), seen)
        self._recent.clear()
        self._run_start = None
        self._silence_start = None
        self._paused = False
        return [Started(self._utterances, onset / SAMPLE_RATE, start)]

    def _speaking(self, index: int, prob: float) -> list[Event]:
        assert self._open is not None
        events: list[Event] = []
        if prob >= self.settings.threshold:
            self._silence_start = None
            if self._paused:
                self._paused = False
                events.append(Resumed(self._open.number))
        elif prob < self._end_negative and self._silence_start is None:
            self._silence_start = index
        if self._silence_start is not None:
            quiet = index + 1 - self._silence_start
            speech_end = self._silence_start * FRAME_SAMPLES
            if quiet >= self._silence:
                events.append(self._close(speech_end, speech_end + self._pad_after))
                return events
            if quiet >= self._pause and not self._paused:
                self._paused = True
                events.append(Paused(self._open.number, speech_end, speech_end + self._pad_after))
        end = (index + 1) * FRAME_SAMPLES
        if end - self._open.audio_start >= self._max_samples:
            events += self._too_long(end)
        return events

    def _too_long(self, end: int) -> list[Event]:
        assert self._open is not None
        if self._silence_start is not None:
            # In a pause already: end the utterance there, as an endpoint would.
            speech_end = self._silence_start * FRAME_SAMPLES
            return [self._close(speech_end, min(end, speech_end + self._pad_after))]
        cut_frame = self._best_pause()
        cut = cut_frame * FRAME_SAMPLES
        kept = self._open.probs[cut_frame - self._open.first_frame :]
        ended = self._close(cut, cut, cut=True)
        self._utterances += 1
        self._open = _Open(self._utterances, cut, cut_frame, kept)
        return [ended, Started(self._utterances, cut / SAMPLE_RATE, cut)]

    def _best_pause(self) -> int:
        """The frame to cut at: the middle of the quietest PAUSE_FRAMES stretch in the second
        half of the open utterance."""
        assert self._open is not None
        probs = np.asarray(self._open.probs, dtype=np.float32)
        first = max(1, len(probs) // 2)
        tail = probs[first:]
        width = min(PAUSE_FRAMES, len(tail))
        if width == 0:
            return self._open.first_frame + len(probs)
        means = np.convolve(tail, np.ones(width) / width, mode="valid")
        # The latest of equally quiet stretches: the longest first part.
        best = len(means) - 1 - int(np.argmin(means[::-1]))
        return self._open.first_frame + first + best + width // 2

    def _close(self, speech_end: int, audio_end: int, cut: bool = False) -> Ended:
        assert self._open is not None
        event = Ended(self._open.number, speech_end / SAMPLE_RATE, audio_end, cut)
        self._floor = audio_end
        self._open = None
        self._silence_start = None
        self._paused = False
        self._run_start = None
        self._run_frames = 0
        return event
