"""`probe`: what a file declares, checked against what it holds.

Headers give the format, rate, channels and (usually) the length; a bounded pass then measures
the audio actually there, stopping just past the declared length (plus its slack) or the
caller's limit, whichever is first. The pass counts packet durations without decoding where the
container states them (a few milliseconds per minute of audio) and decodes-and-discards only
where it does not. A file holding more than it declares is refused; a file declaring no length
is measured within the time budget, or refused."""

from __future__ import annotations

import av

from services.common.audio.bounds import (
    Budget,
    OutOfTime,
    allowed,
    check_format,
    longer_than_declared,
)
from services.common.audio.ffmpeg_reader import audio_stream, av_header, open_av
from services.common.audio.header import Header
from services.common.audio.measure import Progress, decoded_seconds, packet_seconds
from services.common.audio.messages import secs, sniff_reason, undecodable
from services.common.audio.sink import check_complete, limit_stop, over_limit
from services.common.audio.soundfile_reader import (
    open_soundfile,
    soundfile_header,
    soundfile_seconds,
)
from services.common.audio.source import Source
from services.common.audio.types import AudioInfo
from services.common.audio.wav_header import wav_undeclared_seconds
from services.common.errors import BadAudio

_UNBOUNDED = float("inf")


def probe_source(source: Source, name: str, max_seconds: float | None, budget: Budget) -> AudioInfo:
    header, by_soundfile = _header(source, name)
    over = max_seconds is not None and (header.declared or 0.0) > limit_stop(max_seconds)
    if over:  # over the limit as declared: nothing to measure; the caller refuses it
        return _declared(header)
    stop_at = min(
        _UNBOUNDED if header.declared is None else allowed(header.declared),
        _UNBOUNDED if max_seconds is None else limit_stop(max_seconds),
    )
    try:
        held = held_seconds(source, name, header, by_soundfile, stop_at, budget.start())
    except OutOfTime:
        if header.declared is None:
            raise BadAudio(
                f"could not measure the audio{name} within {secs(budget.seconds or 0)} s: the "
                "file declares no length; re-encode it so that it does (e.g. ffmpeg -i in "
                "-c:a flac out.flac)"
            ) from None
        held = None  # a declared length decoding will still hold the audio to
    if header.declared is not None:
        if held is not None and held > allowed(header.declared):
            raise longer_than_declared(header.declared)
        return _declared(header)
    assert held is not None
    if max_seconds is not None and held > limit_stop(max_seconds):
        raise over_limit(max_seconds)
    if held <= 0:
        raise BadAudio("audio contains no samples")
    return AudioInfo(held, header.sample_rate, header.channels, header.format, False)


def _declared(header: Header) -> AudioInfo:
    assert header.declared is not None
    return AudioInfo(header.declared, header.sample_rate, header.channels, header.format, True)


def _header(source: Source, name: str) -> tuple[Header, bool]:
    """The headers (read by libsndfile when it opens the file, else PyAV), rate and channels
    checked; True when libsndfile read them."""
    sound_file = open_soundfile(source)
    if sound_file is not None:
        with sound_file:
            header = soundfile_header(sound_file, source)
        check_format(header.sample_rate, header.channels, name)
        if header.declared is not None and header.present is not None:
            check_complete(header.declared, header.present, failed=False)
        return header, True
    with open_av(source, name) as container:
        stream = audio_stream(container, source, name)
        return av_header(container, stream, source, name), False


def check_held(source: Source, name: str, header: Header) -> None:
    """For `decode` of a file libsndfile reads: libsndfile stops at the length the header
    declares (FLAC's sample count, Ogg's last granule, MP3's Xing frame count), so look past it
    with a quick packet pass and refuse a file that holds more."""
    if header.declared is None:
        return
    held = held_seconds(source, name, header, True, allowed(header.declared), Budget())
    if held > allowed(header.declared):
        raise longer_than_declared(header.declared)


def held_seconds(
    source: Source, name: str, header: Header, by_soundfile: bool, stop_at: float, budget: Budget
) -> float:
    """Seconds of audio the file holds, counted up to just past `stop_at`."""
    if header.format == "wav" and header.declared is not None:
        # PCM: the bytes say it all; both readers stop at the declared data, so look past it.
        return header.declared + wav_undeclared_seconds(source)
    try:
        container = av.open(source.view(), mode="r", metadata_errors="ignore")
    except (av.FFmpegError, OSError, ValueError) as error:
        if not by_soundfile:
            raise undecodable(name, sniff_reason(source.head(12))) from error
        return _soundfile_seconds(source, name, stop_at, budget)
    with container:
        stream = audio_stream(container, source, name)
        seconds = packet_seconds(container, stream, stop_at, budget)
    if seconds:
        return seconds
    # No packet durations (or none counted): decode, dropping the samples.
    progress = Progress()
    with open_av(source, name) as container:
        stream = audio_stream(container, source, name)
        seconds = decoded_seconds(container, stream, stop_at, budget, progress)
    if seconds == 0 and (progress.failed or progress.skipped):
        raise undecodable(name, sniff_reason(source.head(12)))
    return seconds


def _soundfile_seconds(source: Source, name: str, stop_at: float, budget: Budget) -> float:
    sound_file = open_soundfile(source)
    if sound_file is None:
        raise undecodable(name, sniff_reason(source.head(12)))
    with sound_file:
        return soundfile_seconds(sound_file, name, stop_at, budget)
