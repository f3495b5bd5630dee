"""The engine's bounds on generation (services.transcriber.engine), without the model."""

from __future__ import annotations

from services.transcriber.engine import SAFE_NEW_TOKENS, max_new_tokens


def test_short_audio_caps_generation_longer_audio_keeps_the_default() -> None:
    assert max_new_tokens(1.0) == 62
    assert max_new_tokens(0.1) == 35
    assert max_new_tokens(3.9) == 149
    # From about 4 s on, Whisper's own window bounds the work.
    assert max_new_tokens(4.0) is None
    assert max_new_tokens(3600.0) is None
    assert all((max_new_tokens(s / 10) or 0) <= SAFE_NEW_TOKENS for s in range(0, 100))
