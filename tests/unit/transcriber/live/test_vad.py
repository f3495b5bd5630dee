"""The incremental Silero VAD (the model in faster-whisper's wheel) on a real clip."""

from __future__ import annotations

import numpy as np

from devsupport import evalset
from services.common.audio import decode
from services.transcriber.engine import silero_vad_path
from services.transcriber.live.vad import StreamingVad, load_model


def _clip() -> np.ndarray:
    clip = evalset.clip("en_pv_cheetah_test")
    return decode(clip.read(), clip.path.name)


def test_chunks_of_any_size_score_the_same_as_the_whole() -> None:
    audio = _clip()
    whole = StreamingVad(load_model(silero_vad_path())).feed(audio)
    vad = StreamingVad(load_model(silero_vad_path()))
    pieces = [vad.feed(audio[i : i + 1234]) for i in range(0, len(audio), 1234)]
    np.testing.assert_allclose(np.concatenate(pieces), whole, atol=1e-5)
    assert len(whole) == len(audio) // 512 == vad.frames
    assert 0.3 < float((whole >= 0.5).mean()) < 0.95  # speech, with pauses around it


def test_quiet_speech_after_loud_speech_is_still_speech() -> None:
    audio = _clip()
    loud = audio / np.abs(audio).max() * 0.8
    quiet = audio / np.abs(audio).max() * 0.02  # 32 dB softer
    gap = np.zeros(16_000, dtype=np.float32)
    probs = StreamingVad(load_model(silero_vad_path())).feed(
        np.concatenate([loud, gap, quiet]).astype(np.float32)
    )
    frames = len(loud) // 512
    first = float((probs[:frames] >= 0.5).mean())
    second = float((probs[-frames:] >= 0.5).mean())
    assert second > 0.8 * first, (first, second)
