"""Decoding to 16 kHz PCM on disk (services.common.audio.decode_pcm16_to_file) gives exactly the
samples decoding in memory gives, on real clips of each reader (libsndfile, PyAV), reads back a
slice at a time, and holds the same bounds (the caller's limit, the admitted length)."""

from __future__ import annotations

import tempfile

import numpy as np
import pytest

from devsupport import evalset
from services.common.audio import decode, decode_pcm16, decode_pcm16_to_file
from services.common.errors import BadAudio
from tests.support import encode


def on_disk(
    content: bytes, filename: str, max_seconds: float | None = None, admitted: float | None = None
) -> np.ndarray:
    with tempfile.TemporaryFile() as source, tempfile.TemporaryFile() as out:
        source.write(content)
        pcm = decode_pcm16_to_file(source, filename, out, max_seconds, admitted)
        count = len(pcm)
        assert out.tell() == count * 2  # every sample went to the file
        return np.concatenate([pcm[: count // 2], pcm[count // 2 :]])


@pytest.mark.parametrize("clip_id", ["en_jfk", "en_pv_leopard_test"])
def test_a_clip_decodes_to_disk_exactly_as_in_memory(clip_id: str) -> None:
    content = evalset.clip(clip_id).read()
    assert np.array_equal(on_disk(content, "clip.flac"), decode_pcm16(content, "clip.flac"))


def test_a_file_only_pyav_reads_decodes_to_disk_exactly_as_in_memory() -> None:
    samples = decode(evalset.clip("en_jfk").read(), "jfk.flac")
    m4a = encode.av_bytes(samples, 16_000, "mp4", "aac")
    got = on_disk(m4a, "jfk.m4a")
    assert np.array_equal(got, decode_pcm16(m4a, "jfk.m4a"))
    assert abs(len(got) / 16000 - 11.0) < 0.1


def test_audio_past_the_limit_is_refused() -> None:
    with pytest.raises(BadAudio, match="audio is 11 s long; the limit is 5 s"):
        on_disk(evalset.clip("en_jfk").read(), "jfk.flac", max_seconds=5)


def test_audio_past_its_admitted_length_is_refused_naming_both() -> None:
    with pytest.raises(BadAudio, match=r"admitted as 5 s long but it holds more than 5\.5 s"):
        on_disk(evalset.clip("en_jfk").read(), "jfk.flac", admitted=5)


def test_slices_read_back_what_was_written() -> None:
    content = evalset.clip("en_jfk").read()
    expected = decode_pcm16(content, "jfk.flac")
    with tempfile.TemporaryFile() as out:
        pcm = decode_pcm16_to_file(content, "jfk.flac", out)
        assert np.array_equal(pcm[1000:1010], expected[1000:1010])
        assert len(pcm[len(pcm) - 5 : len(pcm) + 100]) == 5
        with pytest.raises(ValueError, match="contiguous"):
            pcm[0:10:2]
