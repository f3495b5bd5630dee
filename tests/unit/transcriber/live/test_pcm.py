"""Raw PCM of a live session to 16 kHz mono float32."""

from __future__ import annotations

import numpy as np
import pytest

from services.common.errors import InvalidArgument
from services.transcriber.live.pcm import FLOAT32, LINEAR16, PcmDecoder


def tone(rate: int, seconds: float, hz: float = 440.0) -> np.ndarray:
    t = np.arange(int(rate * seconds)) / rate
    return (0.5 * np.sin(2 * np.pi * hz * t)).astype(np.float32)


def test_linear16_mono_at_16k_is_scaled_and_kept_whole() -> None:
    decoder = PcmDecoder(LINEAR16, 16_000, 1)
    samples = np.array([0, 16384, -32768, 32767], dtype="<i2")
    out = decoder.feed(samples.tobytes())
    assert out.dtype == np.float32
    np.testing.assert_allclose(out, [0.0, 0.5, -1.0, 32767 / 32768])


def test_a_chunk_cut_inside_a_sample_keeps_the_remainder() -> None:
    decoder = PcmDecoder(LINEAR16, 16_000, 1)
    data = np.arange(100, dtype="<i2").tobytes()
    pieces = [data[:3], data[3:50], data[50:51], data[51:]]
    out = np.concatenate([decoder.feed(p) for p in pieces])
    np.testing.assert_allclose(out * 32768, np.arange(100))


def test_stereo_is_mixed_down_even_across_chunk_boundaries() -> None:
    decoder = PcmDecoder(FLOAT32, 16_000, 2)
    left = np.full(10, 0.5, dtype="<f4")
    right = np.full(10, -0.1, dtype="<f4")
    data = np.stack([left, right], axis=1).reshape(-1).tobytes()
    # 7 bytes: not even one float; 13: a whole left sample and part of the right one.
    out = np.concatenate(
        [decoder.feed(data[:7]), decoder.feed(data[7:13]), decoder.feed(data[13:])]
    )
    np.testing.assert_allclose(out, np.full(10, 0.2), atol=1e-6)


def test_float32_nan_and_out_of_range_are_tamed() -> None:
    decoder = PcmDecoder(FLOAT32, 16_000, 1)
    out = decoder.feed(np.array([np.nan, 3.0, -np.inf, 0.25], dtype="<f4").tobytes())
    np.testing.assert_allclose(out, [0.0, 1.0, -1.0, 0.25])


@pytest.mark.parametrize("rate", [8_000, 22_050, 44_100, 48_000])
def test_other_rates_are_resampled_to_16k_in_chunks(rate: int) -> None:
    decoder = PcmDecoder(LINEAR16, rate, 1)
    signal = tone(rate, 1.0)
    data = (signal * 32767).astype("<i2").tobytes()
    chunk = 2 * rate // 10 + 1  # 100 ms and an odd byte: never aligned
    out = np.concatenate(
        [decoder.feed(data[i : i + chunk]) for i in range(0, len(data), chunk)] + [decoder.flush()]
    )
    assert abs(len(out) - 16_000) <= 2
    expected = tone(16_000, 1.0)
    # The same tone (away from the edges, where the resampler ramps).
    middle = slice(1_000, 15_000)
    assert np.corrcoef(out[middle], expected[middle])[0, 1] > 0.99
    assert decoder.input_seconds == pytest.approx(1.0, abs=1e-3)


@pytest.mark.parametrize(
    ("encoding", "rate", "channels", "field"),
    [
        ("mulaw", 16_000, 1, "streaming_config.encoding"),
        (LINEAR16, 7_999, 1, "streaming_config.sample_rate_hertz"),
        (LINEAR16, 48_001, 1, "streaming_config.sample_rate_hertz"),
        (FLOAT32, 16_000, 3, "streaming_config.audio_channel_count"),
    ],
)
def test_bad_settings_are_refused(encoding: str, rate: int, channels: int, field: str) -> None:
    with pytest.raises(InvalidArgument) as caught:
        PcmDecoder(encoding, rate, channels)
    assert caught.value.violations[0].field == field
