"""services.common.audio: bad audio (empty, not audio, truncated, video only, over the limit) is
a BadAudio whose message says what is wrong. All audio is synthesised and encoded in memory."""

from __future__ import annotations

import functools
import re
import struct
from typing import Any

import numpy as np
import pytest

from services.common.audio import SAMPLE_RATE, decode, probe
from services.common.errors import BadAudio
from tests.support.encode import av_bytes, sf_bytes, video_only
from tests.support.tone import DURATION_TOLERANCE, TONE_HZ, peak_hz, tone

LONG = 4.0  # seconds; long enough that half a file is well past any truncation tolerance


@functools.cache
def long_file(kind: str) -> bytes:
    noisy = tone(seconds=LONG, rate=44_100, noise=0.1)
    opus_rate = tone(seconds=LONG, rate=48_000, noise=0.1)
    builders = {
        "wav": lambda: sf_bytes(noisy, 44_100, "WAV", "PCM_16"),
        "flac": lambda: sf_bytes(noisy, 44_100, "FLAC", "PCM_16"),
        "ogg-vorbis": lambda: sf_bytes(noisy, 44_100, "OGG", "VORBIS"),
        "ogg-opus": lambda: sf_bytes(opus_rate, 48_000, "OGG", "OPUS"),
        "mp3-xing": lambda: av_bytes(noisy, 44_100, "mp3", "libmp3lame"),
        "mp3-no-xing": lambda: av_bytes(
            noisy, 44_100, "mp3", "libmp3lame", {"write_xing": "0", "id3v2_version": "0"}
        ),
        "m4a": lambda: av_bytes(noisy, 44_100, "mp4", "aac"),
        "webm": lambda: av_bytes(opus_rate, 48_000, "webm", "libopus"),
        "adts": lambda: av_bytes(noisy, 44_100, "adts", "aac"),
    }
    return builders[kind]()


# The cut leaves 1-2 s of the 4 s decodable, depending on how the codec spends bytes.
HALF_DECODED = r"^audio is truncated: the header declares 4(\.\d+)? s but only [12](\.\d+)? s could"


def half(content: bytes) -> bytes:
    return content[: len(content) // 2]


def bad_audio(content: bytes, filename: str = "", **kwargs: Any) -> str:
    with pytest.raises(BadAudio) as caught:
        decode(content, filename, **kwargs)
    return caught.value.message


def wav_with_data_size(declared_bytes: int, present_bytes: int, rate: int = 16_000) -> bytes:
    """A 16-bit mono WAV whose data chunk header declares `declared_bytes`."""
    fmt = struct.pack("<HHIIHH", 1, 1, rate, rate * 2, 2, 16)
    data = (np.sin(np.arange(present_bytes // 2) * 0.1) * 10_000).astype("<i2").tobytes()
    body = b"WAVE" + b"fmt " + struct.pack("<I", 16) + fmt + b"data"
    body += struct.pack("<I", declared_bytes) + data
    return b"RIFF" + struct.pack("<I", len(body)) + body


def test_empty_content() -> None:
    assert bad_audio(b"") == "audio.content is empty"
    with pytest.raises(BadAudio, match=r"^audio\.content is empty$"):
        probe(b"")


def test_bad_audio_points_at_the_field() -> None:
    with pytest.raises(BadAudio) as caught:
        decode(b"")
    assert [v.field for v in caught.value.violations] == ["audio.content"]


@pytest.mark.parametrize(
    ("content", "filename"),
    [
        pytest.param(
            np.random.default_rng(0).integers(0, 256, 20_000, dtype=np.uint8).tobytes(),
            "",
            id="random-bytes",
        ),
        pytest.param(b"Meeting notes: not audio at all.\n" * 50, "notes.wav", id="text-named-wav"),
    ],
)
def test_not_audio(content: bytes, filename: str) -> None:
    message = bad_audio(content, filename)
    assert message.startswith("could not decode audio")
    assert "not a recognised audio format (supported: WAV, FLAC, OGG/Opus" in message
    if filename:
        assert repr(filename) in message
    with pytest.raises(BadAudio, match="not a recognised audio format"):
        probe(content, filename)


def test_wav_with_no_samples() -> None:
    content = sf_bytes(np.zeros((0, 1), np.float32), 16_000, "WAV", "PCM_16")
    assert bad_audio(content) == "audio contains no samples"
    with pytest.raises(BadAudio, match="audio contains no samples"):
        probe(content)


def test_wav_header_declaring_more_data_than_present() -> None:
    # 3 s declared, 1 s present: libsndfile quietly clips to what is there; we read the header.
    content = wav_with_data_size(declared_bytes=3 * 32_000, present_bytes=32_000)
    expected = "audio is truncated: the header declares 3 s but only 1 s could be decoded"
    assert bad_audio(content) == expected
    with pytest.raises(BadAudio, match="header declares 3 s"):
        probe(content)  # cheap to see from the header, so probe refuses it too


def test_wav_streaming_placeholder_size_is_not_truncation() -> None:
    # Writers that cannot seek back leave 0xFFFFFFFF as the data size.
    content = wav_with_data_size(declared_bytes=0xFFFFFFFF, present_bytes=32_000)
    assert len(decode(content)) == SAMPLE_RATE


@pytest.mark.parametrize(
    ("kind", "cut", "expected"),
    [
        # The RIFF data chunk declares its size (libsndfile clips it to the bytes present, so
        # decode reads the header itself).
        pytest.param("wav", half, HALF_DECODED, id="wav-half"),
        pytest.param(
            "wav",
            lambda c: c[:44],
            r"^audio is truncated: the header declares 4 s but only 0 s could be decoded$",
            id="wav-header-only",
        ),
        # FLAC's STREAMINFO declares the total sample count, so a cut shows.
        pytest.param(
            "flac",
            half,
            HALF_DECODED,
            id="flac-half",
        ),
        pytest.param(
            "flac",
            lambda c: c[:300],
            r"audio is truncated: the header declares 4 s but only 0 s could be decoded",
            id="flac-first-300-bytes",
        ),
        # LAME's Xing/Info frame declares the frame count.
        pytest.param(
            "mp3-xing",
            half,
            HALF_DECODED,
            id="mp3-xing-half",
        ),
        # Only the Xing frame and the start of the first audio frame: nothing to decode.
        pytest.param(
            "mp3-xing",
            lambda c: c[:300],
            "the data looks like MP3 but is damaged or truncated",
            id="mp3-first-300-bytes",
        ),
        # Inside the Vorbis/Opus setup headers: the stream cannot start.
        pytest.param(
            "ogg-vorbis",
            lambda c: c[:300],
            "the data looks like OGG but is damaged or truncated",
            id="ogg-vorbis-first-300-bytes",
        ),
        pytest.param(
            "ogg-opus",
            lambda c: c[:300],
            "the data looks like OGG but is damaged or truncated",
            id="ogg-opus-first-300-bytes",
        ),
        # FFmpeg writes the moov index last, so half an M4A has no index at all.
        pytest.param(
            "m4a",
            half,
            "the data looks like MP4/M4A but is damaged or truncated",
            id="m4a-half",
        ),
        # The Segment Duration declares the length.
        pytest.param(
            "webm",
            half,
            HALF_DECODED,
            id="webm-half",
        ),
    ],
)
def test_truncated(kind: str, cut: Any, expected: str) -> None:
    content = cut(long_file(kind))
    message = bad_audio(content, f"{kind}.bin")
    assert re.search(expected, message), message
    if kind == "wav":
        # Seen from the header alone, so probe refuses it too; compressed formats need decoding.
        with pytest.raises(BadAudio, match=r"^audio is truncated"):
            probe(content)


@pytest.mark.parametrize("kind", ["mp3-no-xing", "ogg-vorbis", "ogg-opus"])
def test_cut_in_half_without_a_declared_length_decodes_the_half(kind: str) -> None:
    # Nothing in these files declares the total length: a CBR MP3 without a Xing frame is just a
    # run of frames (libsndfile estimates the length from the file size), and an OGG stream only
    # carries per-page granule positions. Half a file is therefore indistinguishable from a
    # shorter, complete file, and the truthful outcome is the audio that is there.
    content = half(long_file(kind))
    samples = decode(content)
    seconds = len(samples) / SAMPLE_RATE
    info = probe(content)
    if kind == "mp3-no-xing":
        # Constant bitrate: half the bytes is half the audio.
        assert seconds == pytest.approx(LONG / 2, abs=0.15)
    else:
        # Only complete pages decode, and libsndfile writes Opus in ~1 s pages, so "half" is
        # looser: between the last complete page and the cut.
        assert 0.5 < seconds < 0.75 * LONG
    assert info.duration_seconds == pytest.approx(seconds, abs=DURATION_TOLERANCE)
    assert peak_hz(samples) == pytest.approx(TONE_HZ, abs=2.0)


@pytest.mark.parametrize(
    ("container", "codec", "name"),
    [
        pytest.param("mp4", "mpeg4", "mp4", id="mp4-video-only"),
        pytest.param("webm", "libvpx", "webm", id="webm-video-only"),
    ],
)
def test_video_without_audio(container: str, codec: str, name: str) -> None:
    content = video_only(container, codec)
    expected = f"could not decode audio 'clip.{name}': the {name} file has no audio stream"
    assert bad_audio(content, f"clip.{name}") == expected
    with pytest.raises(BadAudio, match="has no audio stream"):
        probe(content)


def test_max_seconds_refuses_declared_length_before_decoding() -> None:
    content = long_file("wav")
    assert bad_audio(content, max_seconds=2) == "audio is 4 s long; the limit is 2 s"
    assert (
        bad_audio(long_file("webm"), max_seconds=1.5) == "audio is 4.01 s long; the limit is 1.5 s"
    )


def test_max_seconds_allows_audio_at_the_limit() -> None:
    # AAC priming makes the declared length a little over 4 s; that is not over the limit.
    assert len(decode(long_file("m4a"), max_seconds=LONG)) / SAMPLE_RATE == pytest.approx(
        LONG, abs=DURATION_TOLERANCE
    )


def test_max_seconds_without_a_declared_length_stops_while_decoding() -> None:
    # Raw ADTS AAC declares no length (FFmpeg would only guess one from the bitrate).
    content = long_file("adts")
    info = probe(content)
    assert not info.exact
    assert info.duration_seconds == pytest.approx(LONG, abs=DURATION_TOLERANCE)
    assert bad_audio(content, max_seconds=1) == "audio is longer than the limit of 1 s"
    assert len(decode(content, max_seconds=5)) / SAMPLE_RATE == pytest.approx(
        LONG, abs=DURATION_TOLERANCE
    )


def test_wav_with_an_unknown_codec_is_bad_audio() -> None:
    """A fuzzer finding: a WAV whose format tag is 0 opens in PyAV with no codec at all."""
    data = b"\x00\x01" * 8000
    header = (
        b"RIFF"
        + struct.pack("<I", 36 + len(data))
        + b"WAVEfmt "
        + struct.pack("<IHHIIHH", 16, 0, 1, 16000, 32000, 2, 16)
        + b"data"
        + struct.pack("<I", len(data))
    )
    for function in (probe, decode):
        with pytest.raises(BadAudio) as raised:
            function(header + data, "x.wav")
        assert "x.wav" in raised.value.message
