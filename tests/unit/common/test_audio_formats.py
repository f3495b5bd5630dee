"""services.common.audio: every supported format decodes to 16 kHz mono float32 (and probes
from its headers), and encode_wav writes what decode reads back. All audio is synthesised and
encoded in memory."""

from __future__ import annotations

import functools
import io
from dataclasses import dataclass

import numpy as np
import pytest
import soundfile as sf

from services.common.audio import SAMPLE_RATE, AudioInfo, decode, decode_pcm16, encode_wav, probe
from tests.support.encode import av_bytes, sf_bytes
from tests.support.tone import DURATION_TOLERANCE, SECONDS, TONE_HZ, peak_hz, tone


def rms(samples: np.ndarray) -> float:
    return float(np.sqrt(np.mean(samples.astype(np.float64) ** 2)))


@dataclass(frozen=True)
class Case:
    rate: int
    channels: int
    fmt: str  # AudioInfo.format
    lossless: bool
    build: str  # key into BUILDERS


BUILDERS = {
    "wav-u8": lambda s, r: sf_bytes(s, r, "WAV", "PCM_U8"),
    "wav-s16": lambda s, r: sf_bytes(s, r, "WAV", "PCM_16"),
    "wav-s24": lambda s, r: sf_bytes(s, r, "WAV", "PCM_24"),
    "wav-f32": lambda s, r: sf_bytes(s, r, "WAV", "FLOAT"),
    "flac": lambda s, r: sf_bytes(s, r, "FLAC", "PCM_16"),
    "ogg-vorbis": lambda s, r: sf_bytes(s, r, "OGG", "VORBIS"),
    "ogg-opus": lambda s, r: sf_bytes(s, r, "OGG", "OPUS"),
    "mp3": lambda s, r: sf_bytes(s, r, "MP3", "MPEG_LAYER_III"),
    "mp3-lame": lambda s, r: av_bytes(s, r, "mp3", "libmp3lame"),
    "m4a-aac": lambda s, r: av_bytes(s, r, "mp4", "aac"),
    "webm-opus": lambda s, r: av_bytes(s, r, "webm", "libopus"),
    # PyAV-only paths with packed sample formats (libsndfile does not read Matroska).
    "mkv-pcm-s16": lambda s, r: av_bytes(s, r, "matroska", "pcm_s16le"),
    "mkv-pcm-f32": lambda s, r: av_bytes(s, r, "matroska", "pcm_f32le"),
}

CASES = {
    "wav-8bit-unsigned": Case(44_100, 1, "wav", True, "wav-u8"),
    "wav-16bit": Case(44_100, 1, "wav", True, "wav-s16"),
    "wav-24bit": Case(44_100, 1, "wav", True, "wav-s24"),
    "wav-32bit-float": Case(44_100, 1, "wav", True, "wav-f32"),
    "wav-8khz": Case(8_000, 1, "wav", True, "wav-s16"),
    "wav-16khz-passthrough": Case(16_000, 1, "wav", True, "wav-s16"),
    "wav-48khz-stereo": Case(48_000, 2, "wav", True, "wav-s16"),
    "wav-6ch": Case(48_000, 6, "wav", True, "wav-s16"),
    "flac-48khz": Case(48_000, 1, "flac", True, "flac"),
    "ogg-vorbis": Case(44_100, 1, "ogg", False, "ogg-vorbis"),
    "ogg-opus": Case(48_000, 1, "ogg", False, "ogg-opus"),
    "mp3-libsndfile": Case(44_100, 1, "mp3", False, "mp3"),
    "mp3-lame-stereo": Case(44_100, 2, "mp3", False, "mp3-lame"),
    "m4a-aac": Case(44_100, 1, "mp4", False, "m4a-aac"),
    "m4a-aac-6ch": Case(48_000, 6, "mp4", False, "m4a-aac"),
    "webm-opus-stereo": Case(48_000, 2, "webm", False, "webm-opus"),
    "mkv-pcm-s16-6ch-packed": Case(48_000, 6, "matroska", True, "mkv-pcm-s16"),
    "mkv-pcm-f32-stereo": Case(22_050, 2, "matroska", True, "mkv-pcm-f32"),
}


@functools.cache
def encoded(case_id: str) -> bytes:
    case = CASES[case_id]
    return BUILDERS[case.build](tone(rate=case.rate, channels=case.channels), case.rate)


@pytest.mark.parametrize("case_id", CASES)
def test_decode_gives_16khz_mono_float32_tone(case_id: str) -> None:
    case = CASES[case_id]
    samples = decode(encoded(case_id), f"{case_id}.bin")

    assert samples.dtype == np.float32
    assert samples.ndim == 1
    assert len(samples) / SAMPLE_RATE == pytest.approx(SECONDS, abs=DURATION_TOLERANCE)
    assert np.isfinite(samples).all()
    assert np.abs(samples).max() <= 1.0
    assert peak_hz(samples) == pytest.approx(TONE_HZ, abs=2.0)
    # Every channel carries the same tone, so the channel average keeps its level; lossless
    # formats pin the integer scaling (8-bit unsigned, 24-bit) too.
    if case.lossless:
        assert rms(samples[800:-800]) == pytest.approx(0.5 / np.sqrt(2), rel=0.02)
    else:
        assert 0.2 < rms(samples[4000:-4000]) < 0.6


@pytest.mark.parametrize("case_id", CASES)
def test_probe_reads_headers(case_id: str) -> None:
    case = CASES[case_id]
    info = probe(encoded(case_id))

    assert isinstance(info, AudioInfo)
    assert info.duration_seconds == pytest.approx(SECONDS, abs=DURATION_TOLERANCE)
    assert info.sample_rate == case.rate
    assert info.channels == case.channels
    assert info.format == case.fmt
    assert info.exact


def test_downmix_averages_channels() -> None:
    # Left carries the tone, right is silent: the average is the tone at half level.
    signal = tone(rate=48_000, channels=2)
    signal[:, 1] = 0.0
    for content in (
        sf_bytes(signal, 48_000, "WAV", "FLOAT"),  # libsndfile path
        av_bytes(signal, 48_000, "matroska", "pcm_f32le"),  # PyAV path
    ):
        samples = decode(content)
        assert rms(samples[800:-800]) == pytest.approx(0.25 / np.sqrt(2), rel=0.02)


def test_non_finite_and_out_of_range_floats_are_cleaned() -> None:
    signal = tone(rate=16_000)
    signal[100:200] = np.nan
    signal[300:400] = np.inf
    signal[500:600] = -np.inf
    signal[700:800] = 7.5
    samples = decode(sf_bytes(signal, 16_000, "WAV", "FLOAT"))
    assert np.isfinite(samples).all()
    assert np.abs(samples).max() <= 1.0
    assert (samples[100:200] == 0).all()


def test_resampled_full_scale_signal_stays_in_range() -> None:
    # A full-scale square wave rings past ±1 in any band-limited resampler; decode clips it.
    t = np.arange(48_000) / 48_000
    square = np.sign(np.sin(2 * np.pi * 1000 * t)).astype(np.float32)
    samples = decode(sf_bytes(square, 48_000, "WAV", "FLOAT"))
    assert np.abs(samples).max() <= 1.0


def test_encode_wav_round_trips() -> None:
    source = tone(rate=SAMPLE_RATE)[:, 0]
    content = encode_wav(source)

    info = sf.info(io.BytesIO(content))
    assert (info.format, info.subtype, info.channels, info.samplerate) == (
        "WAV",
        "PCM_16",
        1,
        SAMPLE_RATE,
    )
    samples = decode(content)
    assert samples.shape == source.shape
    np.testing.assert_allclose(samples, source, atol=1e-4)


def test_encode_wav_clips_and_cleans() -> None:
    samples = decode(encode_wav(np.array([2.0, -3.0, np.nan, np.inf, 0.5], dtype=np.float32)))
    np.testing.assert_allclose(samples, [1.0, -1.0, 0.0, 1.0, 0.5], atol=1e-4)


@pytest.mark.parametrize("case_id", ["wav-48khz-stereo", "mp3-lame-stereo", "m4a-aac"])
def test_decode_pcm16_is_decode_in_16_bits(case_id: str) -> None:
    content = encoded(case_id)
    pcm = decode_pcm16(content)
    assert pcm.dtype == np.int16
    np.testing.assert_allclose(pcm / 32768.0, decode(content), atol=1.0 / 32768)


def test_encode_wav_writes_int16_samples_as_they_are() -> None:
    pcm = np.array([0, 1, -1, 32767, -32768, 12345], dtype=np.int16)
    np.testing.assert_array_equal(decode_pcm16(encode_wav(pcm)), pcm)


def test_encode_wav_rejects_multichannel_arrays() -> None:
    with pytest.raises(ValueError, match="1-D"):
        encode_wav(np.zeros((10, 2), dtype=np.float32))
