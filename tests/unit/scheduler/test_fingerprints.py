"""What makes two submissions the same."""

from __future__ import annotations

from sayit.common.v1 import transcription_pb2 as tpb
from services.common.effective_config import effective_config
from services.scheduler.fingerprints import fingerprint as digest
from services.scheduler.fingerprints import key_digest

AUDIO = b"RIFF....WAVE" + bytes(range(256)) * 10


def fingerprint(content: bytes, config: tpb.TranscriptionConfig, model: str) -> str:
    """As the gateway and scheduler do it: the fingerprint of the effective config."""
    return digest(content, effective_config(config, model))


def test_the_same_effective_config_is_the_same_request() -> None:
    plain = fingerprint(AUDIO, tpb.TranscriptionConfig(language_code="ko"), "base")
    same = [
        tpb.TranscriptionConfig(language_code="KO"),
        tpb.TranscriptionConfig(language_code="ko-KR"),
        tpb.TranscriptionConfig(language_code="ko", preset=tpb.PRESET_ACCURATE),
        tpb.TranscriptionConfig(language_code="ko", task=tpb.TASK_TRANSCRIBE),
        tpb.TranscriptionConfig(language_code="ko", vad_filter=True),
        tpb.TranscriptionConfig(language_code="ko", model="base"),
    ]
    for config in same:
        assert fingerprint(AUDIO, config, "base") == plain, config


def test_audio_config_or_model_change_the_request() -> None:
    plain = fingerprint(AUDIO, tpb.TranscriptionConfig(language_code="ko"), "base")
    different = [
        fingerprint(AUDIO + b"\0", tpb.TranscriptionConfig(language_code="ko"), "base"),
        fingerprint(AUDIO, tpb.TranscriptionConfig(language_code="en"), "base"),
        fingerprint(AUDIO, tpb.TranscriptionConfig(), "base"),
        fingerprint(
            AUDIO, tpb.TranscriptionConfig(language_code="ko", preset=tpb.PRESET_FAST), "base"
        ),
        fingerprint(AUDIO, tpb.TranscriptionConfig(language_code="ko", vad_filter=False), "base"),
        fingerprint(
            AUDIO, tpb.TranscriptionConfig(language_code="ko", word_timestamps=True), "base"
        ),
        fingerprint(AUDIO, tpb.TranscriptionConfig(language_code="ko", hotwords="SayIt"), "base"),
        fingerprint(AUDIO, tpb.TranscriptionConfig(language_code="ko"), "small"),
        digest(AUDIO, tpb.TranscriptionConfig(language_code="ko")),  # not the effective config
    ]
    assert plain not in different
    assert len(set(different)) == len(different)


def test_idempotency_keys_are_digested() -> None:
    digest = key_digest("order:17/../ 한")
    assert len(digest) == 32 and all(c in "0123456789abcdef" for c in digest)
    assert key_digest("order-17") != key_digest("order-18")
