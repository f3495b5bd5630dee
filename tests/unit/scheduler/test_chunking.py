"""Cutting long audio into chunks: the pure plan over given pauses, and Silero VAD on real
speech (no Whisper model)."""

from __future__ import annotations

import numpy as np
import pytest

from devsupport import audio, evalset
from services.common.audio import SAMPLE_RATE, decode_pcm16, encode_wav
from services.scheduler import chunking
from services.scheduler.chunking import ChunkPolicy, plan_cuts


def pauses_every(period: float, length: float = 0.5):  # type: ignore[no-untyped-def]
    """A finder that reports a pause of `length` s every `period` s."""

    def find(start: float, end: float) -> list[tuple[float, float]]:
        first = int(max(start, 0) // period) + 1
        found = []
        at = first * period
        while at + length <= end:
            if at >= start:
                found.append((at, at + length))
            at += period
        return found

    return find


def no_quiet(start: float, end: float) -> float:
    raise AssertionError("the quietest moment is only for audio without pauses")


def test_short_audio_stays_one_piece() -> None:
    policy = ChunkPolicy(target_seconds=60, min_seconds=90)
    assert plan_cuts(80.0, policy, pauses_every(5), no_quiet) == []  # under the minimum
    assert plan_cuts(59.0, ChunkPolicy(60, 0), pauses_every(5), no_quiet) == []  # one target


def test_cuts_divide_evenly_and_fall_in_pauses() -> None:
    policy = ChunkPolicy(target_seconds=60, min_seconds=90)
    finder = pauses_every(7.3, 0.4)
    cuts = plan_cuts(300.0, policy, finder, no_quiet)
    assert len(cuts) == 4  # five chunks of about 60 s
    assert cuts == sorted(cuts)
    pieces = chunking.pieces(300.0, cuts)
    assert all(40 <= p.duration <= 75 for p in pieces), pieces
    for cut in cuts:  # each cut is the middle of a pause
        assert any(abs(cut - (s + e) / 2) < 1e-9 for s, e in finder(cut - 1, cut + 1))


def test_a_longer_pause_wins_over_a_slightly_closer_one() -> None:
    def finder(start: float, end: float) -> list[tuple[float, float]]:
        pauses = [(59.0, 59.2), (64.0, 65.2)]  # a breath near the ideal place, a real pause
        return [p for p in pauses if start <= p[0] and p[1] <= end]

    assert plan_cuts(120.0, ChunkPolicy(60, 0), finder, no_quiet) == [pytest.approx(64.6)]


def test_without_any_pause_the_quietest_moment_is_taken() -> None:
    asked = []

    def quietest(start: float, end: float) -> float:
        asked.append((start, end))
        return (start + end) / 2

    cuts = plan_cuts(120.0, ChunkPolicy(60, 0), lambda s, e: [], quietest)
    assert len(cuts) == 1 and asked and asked[0][0] < 60 < asked[0][1]


def test_pieces_are_on_whole_samples_and_cover_the_audio() -> None:
    pieces = chunking.pieces(100.0, [33.33333, 66.66666])
    assert [p.index for p in pieces] == [0, 1, 2]
    assert sum(p.duration for p in pieces) == pytest.approx(100.0)
    for piece in pieces:
        assert (piece.offset * SAMPLE_RATE) == pytest.approx(round(piece.offset * SAMPLE_RATE))
    assert pieces[1].offset == pieces[0].end


def test_real_speech_is_cut_in_its_pauses() -> None:
    content, _, seconds = audio.korean_long(70.0)
    samples = decode_pcm16(content)
    assert samples.dtype == np.int16
    pieces = chunking.plan(samples, ChunkPolicy(target_seconds=20, min_seconds=30))
    assert len(pieces) == 4
    assert sum(p.duration for p in pieces) == pytest.approx(seconds, abs=0.1)
    for piece in pieces[1:]:
        at = int(piece.offset * SAMPLE_RATE)
        around = samples[at - 800 : at + 800].astype(np.float32) / 32768
        assert float(np.sqrt(np.mean(around**2))) < audio.TARGET_RMS / 3


def test_chunks_are_lossless_flac_at_about_half_a_wavs_bytes() -> None:
    # Real speech (the English clips, joined at one loudness): what a chunk in Redis holds.
    content, _ = audio.joined(evalset.clips("en"))
    samples = decode_pcm16(content)
    piece = chunking.Piece(index=1, offset=10.0, duration=180.0)
    flac = chunking.chunk_audio(samples, piece)
    assert flac[:4] == b"fLaC"
    expected = samples[10 * SAMPLE_RATE : 190 * SAMPLE_RATE]
    wav = encode_wav(expected)
    # Lossless: the transcriber decodes exactly the samples the WAV chunk carried.
    assert np.array_equal(decode_pcm16(flac), decode_pcm16(wav))
    assert np.array_equal(decode_pcm16(flac), expected)
    assert len(flac) < 0.65 * len(wav), (len(flac), len(wav))


def test_silence_finder_reports_pauses_between_clips() -> None:
    clips = evalset.clips("ko")[:3]
    content, _ = audio.joined(clips, silence_seconds=1.0)
    finder = chunking.SilenceFinder(decode_pcm16(content))
    first_gap = clips[0].duration_seconds  # the 1 s of silence after the first clip
    pauses = finder(0.0, finder.duration)
    assert any(s <= first_gap + 0.5 <= e for s, e in pauses), pauses
