"""Calling a transcriber's TranscribeStream in the tests, and checking the order of its events."""

from __future__ import annotations

import grpc
import pytest

from sayit.common.v1 import audio_pb2
from sayit.common.v1 import transcription_pb2 as tpb
from sayit.transcriber.v1 import transcriber_service_pb2 as pb
from sayit.transcriber.v1 import transcriber_service_pb2_grpc as pb_grpc


def stub(addr: str) -> pb_grpc.TranscriberServiceStub:
    return pb_grpc.TranscriberServiceStub(grpc.insecure_channel(addr))


def request(content: bytes, language: str = "", **config: object) -> pb.TranscribeStreamRequest:
    return pb.TranscribeStreamRequest(
        audio=audio_pb2.Audio(content=content),
        config=tpb.TranscriptionConfig(language_code=language, **config),  # type: ignore[arg-type]
    )


def events(addr: str, req: pb.TranscribeStreamRequest) -> list[pb.TranscribeStreamResponse]:
    return list(stub(addr).TranscribeStream(req, timeout=300))


def assert_well_ordered(responses: list[pb.TranscribeStreamResponse]) -> tpb.Transcript:
    """Progress never decreases, segments come before the transcript, which comes last."""
    kinds = [r.WhichOneof("event") for r in responses]
    assert kinds[-1] == "transcript" and kinds.count("transcript") == 1, kinds
    fractions = [r.progress.fraction for r in responses if r.HasField("progress")]
    assert fractions == sorted(fractions) and fractions[-1] == pytest.approx(1.0), fractions
    segments = [r.segment for r in responses if r.HasField("segment")]
    transcript = responses[-1].transcript
    assert [s.text for s in segments] == [s.text for s in transcript.segments]
    starts = [s.start_seconds for s in segments]
    assert starts == sorted(starts)
    return transcript
