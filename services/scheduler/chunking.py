"""Cutting long audio into chunks at silences, so several workers transcribe one file at once.

The plan is pure policy over a `find_silences(start, end)` function: the number of chunks comes
from the target length, each cut goes into a pause near its ideal place (a longer pause is worth
going a little further for). Only when no pause exists within half a chunk of the ideal place
(music, noise, no breath for minutes) does a cut go to the quietest moment instead.
`SilenceFinder` answers `find_silences` with faster-whisper's bundled Silero VAD on 16-bit PCM,
one window at a time, so hours of audio never exist as float32 at once.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import numpy.typing as npt

from services.common.audio import SAMPLE_RATE, encode_flac

Silence = tuple[float, float]  # start, end in seconds


class Pcm(Protocol):
    """16 kHz int16 samples: an array, or a file read a slice at a time (audio.PcmFile)."""

    def __len__(self) -> int: ...

    def __getitem__(self, index: slice, /) -> npt.NDArray[np.int16]: ...


FindSilences = Callable[[float, float], list[Silence]]

# Where to look for a pause around an ideal cut: first this fraction of a chunk either side
# (capped), then half a chunk either side before giving up on pauses.
_NEAR_FRACTION = 0.25
_NEAR_CAP_SECONDS = 45.0
_FAR_FRACTION = 0.5
# A pause this long counts as fully as being at the ideal place (normalised distance 0..1).
_PAUSE_WORTH_SECONDS = 1.0
# Silero settings for finding pauses: short pauses count, and speech keeps a margin so a cut in
# the middle of a pause is at least ~100 ms from any word.
_VAD_MIN_SILENCE_MS = 200
_VAD_SPEECH_PAD_MS = 100
_VAD_THRESHOLD = 0.5
_ENERGY_FRAME_SECONDS = 0.1


@dataclass(frozen=True)
class ChunkPolicy:
    # Chunks are about this long (the audio is divided evenly, each cut moved into a pause).
    target_seconds: float
    # Audio shorter than this stays one piece.
    min_seconds: float

    def chunk_count(self, duration: float) -> int:
        if duration < self.min_seconds or duration <= self.target_seconds:
            return 1
        return math.ceil(duration / self.target_seconds)


@dataclass(frozen=True)
class Piece:
    index: int
    offset: float  # seconds from the start of the file
    duration: float

    @property
    def end(self) -> float:
        return self.offset + self.duration


def plan_cuts(
    duration: float,
    policy: ChunkPolicy,
    find_silences: FindSilences,
    quietest: Callable[[float, float], float],
) -> list[float]:
    """Cut points (seconds, increasing) that divide the audio evenly into chunks of at most
    about the target length, each moved into a nearby pause; where there is no pause within
    half a chunk, the quietest moment near the ideal place."""
    cuts: list[float] = []
    start = 0.0
    for left in range(policy.chunk_count(duration), 1, -1):
        length = (duration - start) / left  # the rest, shared evenly by the chunks left
        ideal = start + length
        cut = _pause_near(ideal, length, find_silences)
        if cut is None:
            reach = min(length * _NEAR_FRACTION, _NEAR_CAP_SECONDS)
            cut = quietest(ideal - reach, ideal + reach)
        cuts.append(cut)
        start = cut
    return cuts


def _pause_near(ideal: float, length: float, find_silences: FindSilences) -> float | None:
    """The middle of the best pause near `ideal`: closer is better, longer is better."""
    near = min(length * _NEAR_FRACTION, _NEAR_CAP_SECONDS)
    for reach in (near, length * _FAR_FRACTION):
        silences = find_silences(ideal - reach, ideal + reach)
        if silences:
            best = min(silences, key=lambda s: _cost(s, ideal, reach))
            return (best[0] + best[1]) / 2
    return None


def _cost(silence: Silence, ideal: float, reach: float) -> float:
    middle = (silence[0] + silence[1]) / 2
    length = min(silence[1] - silence[0], _PAUSE_WORTH_SECONDS) / _PAUSE_WORTH_SECONDS
    return abs(middle - ideal) / reach - length


def pieces(duration: float, cuts: list[float]) -> list[Piece]:
    """The chunks between the cuts, on whole samples (so offsets shift timestamps exactly)."""
    total = round(duration * SAMPLE_RATE)
    bounds = [0, *(round(c * SAMPLE_RATE) for c in cuts), total]
    return [
        Piece(
            index=i,
            offset=bounds[i] / SAMPLE_RATE,
            duration=(bounds[i + 1] - bounds[i]) / SAMPLE_RATE,
        )
        for i in range(len(bounds) - 1)
    ]


class SilenceFinder:
    """Pauses in 16 kHz int16 audio, by Silero VAD over the window asked for."""

    def __init__(self, samples: Pcm) -> None:
        self._samples = samples
        self.duration = len(samples) / SAMPLE_RATE

    def _window(self, start: float, end: float) -> tuple[int, npt.NDArray[np.float32]]:
        first = max(0, int(start * SAMPLE_RATE))
        last = min(len(self._samples), int(end * SAMPLE_RATE))
        window = self._samples[first:last].astype(np.float32)
        window *= 1.0 / 32768.0
        return first, window

    def __call__(self, start: float, end: float) -> list[Silence]:
        # Imported here: the VAD is only needed for long audio, and this keeps the scheduler's
        # start-up light. faster_whisper.vad runs Silero on onnxruntime; no Whisper model.
        from faster_whisper.vad import VadOptions, get_speech_timestamps

        first, window = self._window(start, end)
        if len(window) < SAMPLE_RATE:
            return []
        speech = get_speech_timestamps(
            window,
            VadOptions(
                threshold=_VAD_THRESHOLD,
                min_silence_duration_ms=_VAD_MIN_SILENCE_MS,
                speech_pad_ms=_VAD_SPEECH_PAD_MS,
            ),
        )
        edges = [0, *(x for s in speech for x in (s["start"], s["end"])), len(window)]
        silences = []
        for begin, finish in zip(edges[::2], edges[1::2], strict=True):
            # A pause cut off by the window's edge may be speech just outside it: skip those.
            if finish > begin and begin > 0 and finish < len(window):
                silences.append(((first + begin) / SAMPLE_RATE, (first + finish) / SAMPLE_RATE))
        return silences

    def quietest(self, start: float, end: float) -> float:
        """The quietest 100 ms in the window, for audio without any pause."""
        first, window = self._window(start, end)
        frame = int(_ENERGY_FRAME_SECONDS * SAMPLE_RATE)
        frames = len(window) // frame
        if frames == 0:
            return (start + end) / 2
        energy = np.square(window[: frames * frame]).reshape(frames, frame).mean(axis=1)
        return (first + (int(np.argmin(energy)) + 0.5) * frame) / SAMPLE_RATE


def plan(samples: Pcm, policy: ChunkPolicy) -> list[Piece]:
    """The chunks of decoded 16 kHz audio."""
    finder = SilenceFinder(samples)
    return pieces(finder.duration, plan_cuts(finder.duration, policy, finder, finder.quietest))


def chunk_audio(samples: Pcm, piece: Piece) -> bytes:
    """One chunk as 16-bit FLAC: lossless, so the transcriber sees exactly the samples a WAV
    would carry, in about half the bytes of Redis memory (speech)."""
    first = round(piece.offset * SAMPLE_RATE)
    return encode_flac(samples[first : first + round(piece.duration * SAMPLE_RATE)])
