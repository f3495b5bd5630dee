"""Decoding to 16 kHz PCM on disk (services.scheduler.pcm_file) gives the samples decoding in
memory gives, on real clips of each reader (libsndfile, PyAV), and reads back a slice at a time."""

from __future__ import annotations

import tempfile

import numpy as np
import pytest

from devsupport import evalset
from services.common.audio import decode, decode_pcm16
from services.common.errors import BadAudio
from services.scheduler.pcm_file import PcmFile, decode_to_file
from tests.support import encode


def on_disk(content: bytes, filename: str, max_seconds: float | None = None) -> np.ndarray:
    with tempfile.TemporaryFile() as source, tempfile.TemporaryFile() as out:
        source.write(content)
        count = decode_to_file(source, filename, max_seconds, out)
        pcm = PcmFile(out, count)
        assert len(pcm) == count
        halves = [pcm[: count // 2], pcm[count // 2 :]]
        return np.concatenate(halves)


@pytest.mark.parametrize("clip_id", ["en_jfk", "en_pv_leopard_test"])
def test_a_clip_decodes_to_disk_as_in_memory(clip_id: str) -> None:
    content = evalset.clip(clip_id).read()
    expected = decode_pcm16(content, "clip.flac")
    got = on_disk(content, "clip.flac")
    assert len(got) == len(expected)
    assert np.abs(got.astype(np.int32) - expected.astype(np.int32)).max() <= 1


def test_a_file_only_pyav_reads_decodes_to_disk() -> None:
    samples = decode(evalset.clip("en_jfk").read(), "jfk.flac")
    m4a = encode.av_bytes(samples, 16_000, "mp4", "aac")
    got = on_disk(m4a, "jfk.m4a")
    assert abs(len(got) / 16000 - 11.0) < 0.1


def test_audio_past_the_limit_is_refused() -> None:
    with pytest.raises(BadAudio, match="longer than the limit of 5 s"):
        on_disk(evalset.clip("en_jfk").read(), "jfk.flac", max_seconds=5)
