"""How far probing and decoding may go: sane sample rates and channel counts, the slack allowed
over a declared length, and the time budget (with the caller's cancel flag) of a measuring pass."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field

from services.common.audio.messages import secs
from services.common.errors import BadAudio

# Telephone audio goes down to 8 kHz and studio audio up to 384 kHz; outside 1 kHz..384 kHz a
# header is broken or hostile (a 2 GHz rate would make the resampler's buffers enormous).
MIN_SAMPLE_RATE = 1_000
MAX_SAMPLE_RATE = 384_000
# 3rd-order ambisonics is 16 channels, the largest Opus mapping in practice 8..18: 32 is generous.
MAX_CHANNELS = 32
# Decoded audio may exceed a declared length by codec priming/padding (an MP3 frame is 72 ms at
# 16 kHz, AAC priming 64 ms), millisecond rounding of container timestamps and VBR estimates that
# grow with the length: 0.5 s or 1 %, whichever is more, covers them and bounds the extra cost.
SLACK_SECONDS = 0.5
SLACK_RATIO = 0.01


def slack(declared: float) -> float:
    return max(SLACK_SECONDS, SLACK_RATIO * declared)


def allowed(declared: float) -> float:
    """The most audio a file declaring `declared` seconds may hold."""
    return declared + slack(declared)


def check_format(rate: int, channels: int, name: str) -> None:
    """Refuse a header whose sample rate or channel count no real audio has, before decoding."""
    if not MIN_SAMPLE_RATE <= rate <= MAX_SAMPLE_RATE:
        raise BadAudio(
            f"could not decode audio{name}: the header declares a sample rate of {rate} Hz; "
            f"supported rates are {MIN_SAMPLE_RATE // 1000} kHz to "
            f"{MAX_SAMPLE_RATE // 1000} kHz"
        )
    if not 1 <= channels <= MAX_CHANNELS:
        raise BadAudio(
            f"could not decode audio{name}: the header declares {channels} channels; "
            f"supported are 1 to {MAX_CHANNELS}"
        )


def longer_than_declared(declared: float, admitted: bool = False) -> BadAudio:
    what = (
        f"the audio was admitted as {secs(declared)} s long"
        if admitted
        else f"the file's header declares {secs(declared)} s"
    )
    return BadAudio(
        f"{what} but it holds more than {secs(allowed(declared))} s of audio; re-encode it "
        "(e.g. ffmpeg -i in -c:a flac out.flac) so its header is right"
    )


class Cancelled(Exception):
    """The caller of a probe went away (cancelled, or its deadline passed)."""


class OutOfTime(Exception):
    """A measuring pass used up its time budget."""


@dataclass
class Budget:
    """Limits a measuring pass: `seconds` of wall time, the caller's `deadline` (monotonic) and
    `cancel` flag. `check` raises OutOfTime or Cancelled; it costs a clock read."""

    seconds: float | None = None
    deadline: float | None = None
    cancel: threading.Event | None = None
    _ends: float | None = field(default=None, init=False)

    def start(self) -> Budget:
        self._ends = None if self.seconds is None else time.monotonic() + self.seconds
        return self

    def check(self) -> None:
        if self.cancel is not None and self.cancel.is_set():
            raise Cancelled
        if self.deadline is None and self._ends is None:
            return
        now = time.monotonic()
        if self.deadline is not None and now > self.deadline:
            raise Cancelled
        if self._ends is not None and now > self._ends:
            raise OutOfTime


@dataclass(frozen=True)
class Hold:
    """The length decoding is held to: the header's, or the one admitted if shorter."""

    seconds: float
    admitted: bool


def hold_to(declared: float | None, admitted: float | None) -> Hold | None:
    if admitted is not None and admitted > 0 and (declared is None or admitted < declared):
        return Hold(admitted, admitted=True)
    return None if declared is None else Hold(declared, admitted=False)
