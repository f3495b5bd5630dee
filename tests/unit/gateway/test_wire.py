"""SubmitJobRequest's wire bytes built around the audio (services.gateway.wire) read back as the
message the gateway used to build and serialise."""

from __future__ import annotations

import pytest

from sayit.common.v1 import audio_pb2
from sayit.common.v1 import transcription_pb2 as tpb
from sayit.scheduler.v1 import scheduler_service_pb2 as spb
from services.gateway.wire import submit_request_bytes


@pytest.mark.parametrize(
    ("content", "filename"),
    [(b"RIFF" + bytes(range(256)) * 700, "talk.wav"), (b"x", ""), (b"\x80" * 300, "ü.flac")],
)
def test_the_bytes_read_back_as_the_whole_request(content: bytes, filename: str) -> None:
    fields = spb.SubmitJobRequest(
        tenant="acme",
        config=tpb.TranscriptionConfig(language_code="ko", model="base"),
        audio_duration_seconds=12.5,
        routing_policy=spb.ROUTING_POLICY_QUEUE,
        wait_if_short=True,
        idempotency_key="k",
    )
    expected = spb.SubmitJobRequest()
    expected.CopyFrom(fields)
    expected.audio.CopyFrom(audio_pb2.Audio(content=content, filename=filename))
    assert spb.SubmitJobRequest.FromString(submit_request_bytes(fields, content, filename)) == (
        expected
    )


def test_fields_with_audio_are_refused() -> None:
    with pytest.raises(ValueError, match="must not carry audio"):
        submit_request_bytes(spb.SubmitJobRequest(audio=audio_pb2.Audio(filename="a")), b"x", "a")
