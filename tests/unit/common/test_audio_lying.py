"""services.common.audio: decoding never goes past what was admitted.

A file whose header understates its length, in every container the service reads, is refused by
`probe` and by `decode` with a message naming both lengths; a file declaring no length is
measured (when short) or refused fast (over the limit or the time budget); absurd rates and
channel counts are refused before decoding; `admitted_seconds` holds decoding to what the
gateway charged; bytes and open files give the same answers."""

from __future__ import annotations

import functools
import re
import tempfile
import threading
import time
from collections.abc import Callable

import pytest

from services.common import audio
from services.common.audio import decode, decode_pcm16, probe
from services.common.errors import BadAudio
from tests.support import lying_audio as lie
from tests.support.encode import av_bytes, silent_flac

DECLARED = 10.0
HELD = 120.0  # what every lying file really holds


@functools.cache
def held() -> object:
    return lie.tone(HELD)


def _long(fmt: str, subtype: str) -> bytes:
    return lie.sf_blocks(held(), fmt, subtype)  # type: ignore[arg-type]


LYING: dict[str, Callable[[], bytes]] = {
    "wav-wrong-data-size": lambda: lie.wav_data_size(_long("WAV", "PCM_16"), DECLARED),
    "flac-wrong-sample-count": lambda: lie.flac_total_samples(
        _long("FLAC", "PCM_16"), int(DECLARED * lie.RATE)
    ),
    "ogg-vorbis-last-granule": lambda: lie.ogg_last_granule(
        _long("OGG", "VORBIS"), int(DECLARED * lie.RATE)
    ),
    # Opus granules count 48 kHz samples from the start, pre-skip (312) included.
    "ogg-opus-last-granule": lambda: lie.ogg_last_granule(
        _long("OGG", "OPUS"), int(DECLARED * 48_000) + 312
    ),
    "mp3-xing-frame-count": lambda: lie.mp3_xing_frames(
        lie.mp3(held()),
        lie.mp3_frames_for(DECLARED),  # type: ignore[arg-type]
    ),
    "mp3-vbri-frame-count": lambda: lie.mp3_vbri_frames(
        lie.mp3(held()),
        lie.mp3_frames_for(DECLARED),  # type: ignore[arg-type]
    ),
    "m4a-duration": lambda: lie.mp4_duration(
        av_bytes(held(), lie.RATE, "mp4", "aac"),
        DECLARED,  # type: ignore[arg-type]
    ),
    "webm-duration": lambda: lie.webm_duration(lie.webm(held()), DECLARED),  # type: ignore[arg-type]
}

LIE = re.compile(
    r"^the file's header declares (?P<declared>[\d.]+) s but it holds more than "
    r"(?P<most>[\d.]+) s of audio; re-encode it \(e\.g\. ffmpeg -i in -c:a flac out\.flac\) so "
    r"its header is right$"
)


@functools.cache
def lying(kind: str) -> bytes:
    return LYING[kind]()


def refusal(function: Callable[..., object], *args: object, **kwargs: object) -> str:
    with pytest.raises(BadAudio) as caught:
        function(*args, **kwargs)
    return caught.value.message


def assert_names_both_lengths(message: str) -> None:
    match = LIE.match(message)
    assert match, message
    # MP3 readers subtract the encoder delay: 9.91 s for 10 s of frames.
    assert float(match["declared"]) == pytest.approx(DECLARED, abs=0.1)
    assert float(match["most"]) == pytest.approx(float(match["declared"]) + 0.5, abs=0.01)


@pytest.mark.parametrize("kind", LYING)
def test_probe_refuses_a_file_holding_more_than_its_header_declares(kind: str) -> None:
    assert_names_both_lengths(refusal(probe, lying(kind), "clip"))


@pytest.mark.parametrize("kind", LYING)
def test_decode_refuses_it_without_decoding_past_the_declared_length(kind: str) -> None:
    started = time.monotonic()
    assert_names_both_lengths(refusal(decode, lying(kind), "clip"))
    assert_names_both_lengths(refusal(decode_pcm16, lying(kind), "clip", max_seconds=3600))
    # Decoding 120 s of Opus takes ~1 s here; stopping at 10.5 s takes a fraction of it.
    assert time.monotonic() - started < 2.0


def test_an_honest_file_passes_its_own_length() -> None:
    honest = lie.webm(lie.tone(DECLARED))
    assert probe(honest).duration_seconds == pytest.approx(DECLARED, abs=0.05)
    assert len(decode(honest)) / 16_000 == pytest.approx(DECLARED, abs=0.05)


# --- no declared length --------------------------------------------------------------------

SHORT = 12.0
LENGTHLESS: dict[str, Callable[[float], bytes]] = {
    "wav-data-size-0": lambda s: lie.wav_data_size(
        lie.sf_blocks(lie.tone(s), "WAV", "PCM_16"), None
    ),
    "flac-sample-count-0": lambda s: lie.flac_total_samples(
        lie.sf_blocks(lie.tone(s), "FLAC", "PCM_16"), 0
    ),
    "ogg-no-granule-at-end": lambda s: lie.ogg_last_granule(
        lie.sf_blocks(lie.tone(s), "OGG", "VORBIS"), -1
    ),
    "mp3-without-xing": lambda s: lie.mp3(lie.tone(s), xing=False),
    "webm-without-duration": lambda s: lie.webm(lie.tone(s), live=True),
}


@functools.cache
def lengthless(kind: str, seconds: float) -> bytes:
    return LENGTHLESS[kind](seconds)


@pytest.mark.parametrize("kind", LENGTHLESS)
def test_a_short_file_without_a_declared_length_is_measured(kind: str) -> None:
    content = lengthless(kind, SHORT)
    info = probe(content, max_seconds=60, budget_seconds=10)
    # The Ogg reader still finds the length on the page before the last.
    assert info.duration_seconds == pytest.approx(SHORT, abs=1.1 if kind.startswith("ogg") else 0.1)
    assert len(decode(content, max_seconds=60)) / 16_000 == pytest.approx(SHORT, abs=0.1)


@pytest.mark.parametrize("kind", LENGTHLESS)
def test_a_file_without_a_declared_length_over_the_limit_is_refused(kind: str) -> None:
    content = lengthless(kind, SHORT)
    if kind.startswith("wav"):
        # PCM: the file's size tells the length; probe returns it for the caller to refuse.
        assert probe(content, max_seconds=5).duration_seconds == pytest.approx(SHORT)
        assert refusal(decode, content, max_seconds=5) == "audio is 12 s long; the limit is 5 s"
        return
    assert refusal(probe, content, max_seconds=5) == "audio is longer than the limit of 5 s"
    assert refusal(decode, content, max_seconds=5) == "audio is longer than the limit of 5 s"


@functools.cache
def hour_without_length() -> bytes:
    return lie.flac_total_samples(silent_flac(3600), 0)  # ~90 KB of FLAC silence


def test_an_hour_without_a_declared_length_is_refused_fast_over_the_limit() -> None:
    content = hour_without_length()
    started = time.monotonic()
    assert refusal(probe, content, max_seconds=600) == "audio is longer than the limit of 600 s"
    # Stopped at 600 s of 3600: a packet pass over them takes milliseconds.
    assert time.monotonic() - started < 1.0


def test_measuring_stops_at_the_time_budget() -> None:
    message = refusal(probe, hour_without_length(), "long.flac", budget_seconds=0.0)
    assert message == (
        "could not measure the audio 'long.flac' within 0 s: the file declares no length; "
        "re-encode it so that it does (e.g. ffmpeg -i in -c:a flac out.flac)"
    )


def test_measuring_stops_when_the_caller_goes_away() -> None:
    cancel = threading.Event()
    cancel.set()
    with pytest.raises(audio.Cancelled):
        probe(hour_without_length(), cancel=cancel)
    with pytest.raises(audio.Cancelled):
        probe(hour_without_length(), deadline=time.monotonic() - 1)


# --- what was admitted -----------------------------------------------------------------------


def test_decode_holds_audio_to_the_length_admitted() -> None:
    content = lengthless("webm-without-duration", SHORT)
    assert refusal(decode, content, admitted_seconds=5.0) == (
        "the audio was admitted as 5 s long but it holds more than 5.5 s of audio; re-encode it "
        "(e.g. ffmpeg -i in -c:a flac out.flac) so its header is right"
    )
    assert len(decode(content, admitted_seconds=SHORT)) / 16_000 == pytest.approx(SHORT, abs=0.1)
    # 0 = unknown (an old caller): only the header and the limit hold it.
    assert len(decode(content, admitted_seconds=0.0)) / 16_000 == pytest.approx(SHORT, abs=0.1)


# --- absurd headers --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("rate", "channels", "expected"),
    [
        (
            2_000_000_000,
            1,
            "the header declares a sample rate of 2000000000 Hz; supported rates "
            "are 1 kHz to 384 kHz",
        ),
        (
            500,
            1,
            "the header declares a sample rate of 500 Hz; supported rates are 1 kHz to 384 kHz",
        ),
        (16_000, 64, "the header declares 64 channels; supported are 1 to 32"),
    ],
)
def test_absurd_rates_and_channel_counts_are_refused_before_decoding(
    rate: int, channels: int, expected: str
) -> None:
    content = lie.wav_rate(lie.sf_blocks(lie.tone(1.0), "WAV", "PCM_16"), rate, channels)
    for function in (probe, decode):
        assert refusal(function, content, "x.wav") == f"could not decode audio 'x.wav': {expected}"


# --- open files ------------------------------------------------------------------------------


def test_an_open_file_reads_like_bytes_and_stays_open() -> None:
    content = lengthless("webm-without-duration", SHORT)
    with tempfile.TemporaryFile() as spooled:
        spooled.write(content)
        info = probe(spooled, "clip.webm")
        samples = decode(spooled, "clip.webm")
        assert not spooled.closed
    assert info == probe(content)
    assert len(samples) == len(decode(content))
    with tempfile.TemporaryFile() as spooled:
        spooled.write(lying("flac-wrong-sample-count"))
        assert_names_both_lengths(refusal(probe, spooled))
        assert_names_both_lengths(refusal(decode_pcm16, spooled))
