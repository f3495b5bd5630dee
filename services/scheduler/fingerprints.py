"""What makes two submissions the same: the audio bytes and the effective config (which names
the model; see services.common.effective_config). The file name is only a format hint and does
not count."""

from __future__ import annotations

import hashlib

from sayit.common.v1 import transcription_pb2 as tpb

# Bump when a change to chunking or merging could change a transcript, so old results are not
# served for requests that would now be transcribed differently.
VERSION = b"sayit-result-v1"


def fingerprint(content: bytes, effective: tpb.TranscriptionConfig) -> str:
    """A digest naming this audio under this effective config."""
    digest = hasher(effective)
    digest.update(content)
    return digest.hexdigest()


def hasher(effective: tpb.TranscriptionConfig) -> hashlib._Hash:
    """The digest before the audio: feed it the audio's bytes in order, then take hexdigest()
    (for audio that arrives in chunks)."""
    digest = hashlib.sha256()
    settings = effective.SerializeToString(deterministic=True)
    for part in (VERSION, settings):
        digest.update(len(part).to_bytes(8, "big"))
        digest.update(part)
    return digest


def key_digest(idempotency_key: str) -> str:
    """Idempotency keys are the caller's strings: keep them out of Redis key names."""
    return hashlib.sha256(idempotency_key.encode()).hexdigest()[:32]
