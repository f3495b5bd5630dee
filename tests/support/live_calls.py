"""Calling a transcriber's StreamTranscribe in the tests: audio made from the shared clips, sent
at a chosen pace, every response time-stamped, and the wall time each audio second was sent."""

from __future__ import annotations

import bisect
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

import grpc
import numpy as np

from devsupport import evalset
from sayit.common.v1 import streaming_pb2 as spb
from sayit.common.v1 import transcription_pb2 as tpb
from sayit.transcriber.v1 import transcriber_service_pb2 as pb
from sayit.transcriber.v1 import transcriber_service_pb2_grpc as pb_grpc
from services.common.audio import SAMPLE_RATE, decode

# The shared clips were recorded 40 dB apart; joined clips are brought to one speech level (as
# devsupport.audio.joined does).
TARGET_RMS = 0.05


@dataclass(frozen=True)
class Joined:
    samples: np.ndarray  # 16 kHz mono float32
    clips: list[evalset.Clip]
    spans: list[tuple[float, float]]  # each clip's start and end in the joined audio

    @property
    def reference(self) -> str:
        return " ".join(c.reference for c in self.clips)


def join(
    clips: list[evalset.Clip], gap_seconds: float, lead_seconds: float = 0.5, level: bool = True
) -> Joined:
    """The clips one after another, `gap_seconds` of silence between them, each brought to one
    speech level unless `level` is False."""
    pieces = [np.zeros(int(lead_seconds * SAMPLE_RATE), dtype=np.float32)]
    spans = []
    at = lead_seconds
    for clip in clips:
        samples = decode(clip.read(), clip.path.name)
        rms = float(np.sqrt(np.mean(samples**2))) or 1.0
        gain = TARGET_RMS / rms if level else 1.0
        pieces.append(np.clip(samples * gain, -1.0, 1.0).astype(np.float32))
        spans.append((at, at + len(samples) / SAMPLE_RATE))
        at += len(samples) / SAMPLE_RATE + gap_seconds
        pieces.append(np.zeros(int(gap_seconds * SAMPLE_RATE), dtype=np.float32))
    return Joined(np.concatenate(pieces), clips, spans)


def linear16(samples: np.ndarray) -> bytes:
    return (np.clip(samples, -1.0, 1.0) * 32767).astype("<i2").tobytes()


def setup(
    language: str = "",
    *,
    encoding: int = spb.AUDIO_ENCODING_LINEAR16,
    rate: int = SAMPLE_RATE,
    channels: int = 1,
    interim: bool = False,
    job_id: str = "live-test",
    **config: object,
) -> pb.StreamTranscribeRequest:
    return pb.StreamTranscribeRequest(
        setup=pb.StreamTranscribeSetup(
            streaming_config=spb.StreamingRecognitionConfig(
                config=tpb.TranscriptionConfig(language_code=language, **config),  # type: ignore[arg-type]
                encoding=encoding,  # type: ignore[arg-type]
                sample_rate_hertz=rate,
                audio_channel_count=channels,
                interim_results=interim,
            ),
            job_id=job_id,
        )
    )


@dataclass
class Call:
    """One StreamTranscribe call's responses with their arrival times, and when each chunk of
    audio went out."""

    responses: list[tuple[float, pb.StreamTranscribeResponse]] = field(default_factory=list)
    sent: list[tuple[float, float]] = field(default_factory=list)  # (audio seconds, wall time)
    started: float = 0.0

    def kinds(self) -> list[str]:
        return [r.WhichOneof("event") or "" for _, r in self.responses]

    def finals(self) -> list[spb.StreamingRecognitionResult]:
        return [r.result for _, r in self.responses if r.HasField("result") and r.result.is_final]

    def interims(self) -> list[spb.StreamingRecognitionResult]:
        return [
            r.result for _, r in self.responses if r.HasField("result") and not r.result.is_final
        ]

    def sent_at(self, audio_seconds: float) -> float:
        """The wall time the chunk holding `audio_seconds` of audio was sent."""
        ends = [end for end, _ in self.sent]
        index = min(bisect.bisect_left(ends, audio_seconds), len(self.sent) - 1)
        return self.sent[index][1]

    def endpoint_latencies(self) -> list[float]:
        """Per utterance: from sending the chunk where its speech ended (the service's
        SPEECH_ENDED time) to receiving its final result."""
        ended: dict[int, float] = {}
        latencies = []
        for at, response in self.responses:
            if (
                response.HasField("speech_event")
                and response.speech_event.type == spb.SPEECH_EVENT_TYPE_SPEECH_ENDED
            ):
                ended[response.speech_event.utterance] = response.speech_event.time_seconds
            elif response.HasField("result") and response.result.is_final:
                speech_end = ended.get(response.result.utterance)
                if speech_end is not None:
                    latencies.append(at - self.sent_at(speech_end))
        return latencies


def requests(
    call: Call,
    first: pb.StreamTranscribeRequest,
    audio: bytes,
    *,
    bytes_per_second: int = 2 * SAMPLE_RATE,
    chunk_seconds: float = 0.1,
    realtime: bool = False,
) -> Iterator[pb.StreamTranscribeRequest]:
    yield first
    size = max(1, int(bytes_per_second * chunk_seconds))
    call.started = time.monotonic()
    for offset in range(0, len(audio), size):
        piece = audio[offset : offset + size]
        end_seconds = (offset + len(piece)) / bytes_per_second
        if realtime:
            wait = call.started + (offset / bytes_per_second) - time.monotonic()
            if wait > 0:
                time.sleep(wait)
        call.sent.append((end_seconds, time.monotonic()))
        yield pb.StreamTranscribeRequest(audio_content=piece)


def stream(
    addr: str,
    first: pb.StreamTranscribeRequest,
    audio: bytes,
    *,
    timeout: float = 120.0,
    **pace: object,
) -> Call:
    """Runs one call to its end (raises grpc.RpcError if it fails)."""
    call = Call()
    stub = pb_grpc.TranscriberServiceStub(grpc.insecure_channel(addr))
    for response in stub.StreamTranscribe(
        requests(call, first, audio, **pace),  # type: ignore[arg-type]
        timeout=timeout,
    ):
        call.responses.append((time.monotonic(), response))
    return call


def assert_well_ordered(call: Call) -> None:
    """Per utterance: STARTED, interims, ENDED, final, segment (when it has text); utterances
    one after another; the summary last."""
    kinds = call.kinds()
    assert kinds and kinds[-1] == "summary" and kinds.count("summary") == 1, kinds
    expected_next = 1
    state = "idle"
    for _, response in call.responses[:-1]:
        kind = response.WhichOneof("event")
        if kind == "speech_event":
            event = response.speech_event
            if event.type == spb.SPEECH_EVENT_TYPE_SPEECH_STARTED:
                assert state == "idle" and event.utterance == expected_next, (state, event)
                state = "speaking"
            else:
                assert state == "speaking" and event.utterance == expected_next, (state, event)
                state = "ended"
        elif kind == "result" and not response.result.is_final:
            assert state == "speaking" and response.result.utterance == expected_next
        elif kind == "result":
            assert state == "ended" and response.result.utterance == expected_next
            state = "final"
            if not response.result.text:
                state, expected_next = "idle", expected_next + 1
        else:
            assert kind == "segment" and state == "final", (kind, state)
            assert response.segment.id == expected_next
            state, expected_next = "idle", expected_next + 1
    assert state == "idle", state
