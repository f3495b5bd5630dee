"""The gateway's request checks (services.gateway.convert)."""

from __future__ import annotations

import pytest

from sayit.common.v1 import transcription_pb2 as tpb
from services.common.errors import InvalidArgument, ResourceExhausted
from services.gateway import convert


def test_gateway_request_checks() -> None:
    config = tpb.TranscriptionConfig()
    with pytest.raises(
        ResourceExhausted, match=r"1\.0 MiB \(1048577 bytes\); the limit is 1\.0 MiB"
    ):
        convert.validate_content(b"x" * (1 << 20 | 1), 1 << 20)
    with pytest.raises(InvalidArgument, match=r"audio\.content is empty"):
        convert.validate_content(b"", 10)
    with pytest.raises(InvalidArgument, match=r"audio\.filename is 256 characters"):
        convert.validate_submission("f" * 256, config, "base")
    with pytest.raises(InvalidArgument, match="page_size must be between 0 and 100"):
        convert.validate_page(-1, "")
    with pytest.raises(InvalidArgument, match="page_token is not a token"):
        convert.validate_page(10, "x" * 513)
    with pytest.raises(InvalidArgument, match="after_sequence must be 0"):
        convert.validate_after_sequence(-5)
    convert.validate_page(100, "x" * 512)


def test_a_submission_goes_on_with_its_effective_config() -> None:
    """What the scheduler gets (and keeps in the job): the language normalised, every default
    the service applies written in, the served model named."""
    raw = tpb.TranscriptionConfig(language_code="KO-kr", word_timestamps=True)
    effective = convert.validate_submission("", raw, "base")
    assert effective == tpb.TranscriptionConfig(
        language_code="ko",
        preset=tpb.PRESET_ACCURATE,
        model="base",
        task=tpb.TASK_TRANSCRIBE,
        word_timestamps=True,
        vad_filter=True,
    )
    assert effective.HasField("vad_filter")
