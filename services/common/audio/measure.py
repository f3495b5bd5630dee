"""Measuring how much audio a file holds without keeping any of it: a pass over the container's
packets (their durations, no decoding), or, for streams whose packets carry none, a
decode-and-discard pass. Both stop as soon as the count passes `stop_at` and check their
`Budget` (time, caller's cancel flag) as they go, so a file holding hours costs at most that."""

from __future__ import annotations

import contextlib
from collections.abc import Generator
from dataclasses import dataclass

import av

from services.common.audio.bounds import Budget

# A packet longer than this is a wrapped or forged duration (FFmpeg's Ogg demuxer gives the last
# packet a negative one when the final granule lies); such packets are not counted.
_MAX_PACKET_SECONDS = 60.0
# Packets between budget checks: a clock read each time would cost ~5 % of a demux pass.
_CHECK_EVERY = 32


@dataclass
class Progress:
    failed: bool = False  # the demuxer stopped with an error
    skipped: int = 0  # packets the decoder rejected


def packet_seconds(
    container: av.container.InputContainer, stream: av.AudioStream, stop_at: float, budget: Budget
) -> float | None:
    """Seconds of audio the stream's packets last, up to just past `stop_at`; None when too few
    packets state a duration to tell."""
    time_base = stream.time_base
    if not time_base:
        return None
    seconds, counted, missing = 0.0, 0, 0
    with contextlib.suppress(av.FFmpegError, OSError, ValueError):  # damage: count what came
        for index, packet in enumerate(container.demux(stream)):
            if index % _CHECK_EVERY == 0:
                budget.check()
            if not packet.size:  # the demuxer's final empty packet
                continue
            duration = float(packet.duration * time_base) if packet.duration else 0.0
            if not 0.0 < duration <= _MAX_PACKET_SECONDS:
                missing += 1
                continue
            counted += 1
            seconds += duration
            if seconds > stop_at:
                return seconds
    return None if missing > counted else seconds


def decoded_seconds(
    container: av.container.InputContainer,
    stream: av.AudioStream,
    stop_at: float,
    budget: Budget,
    progress: Progress,
) -> float:
    """Seconds of audio the stream decodes to, up to just past `stop_at`; samples are dropped
    as they come."""
    seconds = 0.0
    with contextlib.closing(av_frames(container, stream, progress)) as frames:
        for index, frame in enumerate(frames):
            if index % _CHECK_EVERY == 0:
                budget.check()
            seconds += frame.samples / frame.sample_rate
            if seconds > stop_at:
                break
    return seconds


def av_frames(
    container: av.container.InputContainer, stream: av.AudioStream, progress: Progress
) -> Generator[av.AudioFrame, None, None]:
    try:
        for packet in container.demux(stream):
            try:
                frames = stream.decode(packet)
            except av.error.InvalidDataError:
                # A damaged packet (typically the cut last one) costs only its own frames.
                progress.skipped += 1
                continue
            for frame in frames:
                if frame.samples > 0 and frame.sample_rate > 0:
                    yield frame
    except (av.FFmpegError, OSError, ValueError):
        progress.failed = True
