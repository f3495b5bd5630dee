"""What makes two submissions the same: the audio bytes, the effective config and the model.

"Effective" means after defaults and normalisation, so "KO" and "ko", an unset preset and
PRESET_ACCURATE, an unset vad_filter and vad_filter=true are the same request. The file name
is only a format hint and does not count.
"""

from __future__ import annotations

import hashlib

from sayit.common.v1 import transcription_pb2 as tpb
from services.common.validation import normalize_language

# Bump when a change to chunking or merging could change a transcript, so old results are not
# served for requests that would now be transcribed differently.
VERSION = b"sayit-result-v1"


def effective_config(config: tpb.TranscriptionConfig, model: str) -> tpb.TranscriptionConfig:
    return tpb.TranscriptionConfig(
        language_code=normalize_language(config.language_code),
        preset=config.preset or tpb.PRESET_ACCURATE,
        model=config.model or model,
        task=config.task or tpb.TASK_TRANSCRIBE,
        word_timestamps=config.word_timestamps,
        vad_filter=config.vad_filter if config.HasField("vad_filter") else True,
        initial_prompt=config.initial_prompt,
        hotwords=config.hotwords,
    )


def fingerprint(content: bytes, config: tpb.TranscriptionConfig, model: str) -> str:
    """A digest naming this audio under this effective config and model."""
    digest = hashlib.sha256()
    settings = effective_config(config, model).SerializeToString(deterministic=True)
    for part in (VERSION, settings):
        digest.update(len(part).to_bytes(8, "big"))
        digest.update(part)
    digest.update(content)
    return digest.hexdigest()


def key_digest(idempotency_key: str) -> str:
    """Idempotency keys are the caller's strings: keep them out of Redis key names."""
    return hashlib.sha256(idempotency_key.encode()).hexdigest()[:32]
