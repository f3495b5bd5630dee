"""Hallucination guards and language detection through the real transcriber and model: audio
where nobody speaks yields no words, and the language of every shared clip is detected."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import grpc
import pytest

from devsupport import evalset, processes
from sayit.common.v1 import audio_pb2
from sayit.common.v1 import transcription_pb2 as tpb
from sayit.transcriber.v1 import transcriber_service_pb2 as pb
from sayit.transcriber.v1 import transcriber_service_pb2_grpc as pb_grpc
from tests.support import nonspeech

pytestmark = pytest.mark.model


def transcribe(addr: str, content: bytes, **config: object) -> tpb.Transcript:
    stub = pb_grpc.TranscriberServiceStub(grpc.insecure_channel(addr))
    request = pb.TranscribeStreamRequest(
        audio=audio_pb2.Audio(content=content),
        config=tpb.TranscriptionConfig(**config),  # type: ignore[arg-type]
    )
    responses = list(stub.TranscribeStream(request, timeout=300))
    assert responses[-1].HasField("transcript")
    return responses[-1].transcript


NOBODY_SPEAKS = {
    "silence-30s": lambda: nonspeech.silence(30),
    "white-noise-30s": lambda: nonspeech.white_noise(30),
    "pink-noise-30s": lambda: nonspeech.pink_noise(30),
    "tones-60s": lambda: nonspeech.tones(60),
}


@pytest.mark.parametrize("language", ["ko", "en", ""], ids=["ko", "en", "detect"])
@pytest.mark.parametrize("name", sorted(NOBODY_SPEAKS))
def test_no_words_where_nobody_speaks(
    transcriber: processes.ServiceProcess, name: str, language: str
) -> None:
    content = nonspeech.wav(NOBODY_SPEAKS[name]())
    transcript = transcribe(transcriber.addr or "", content, language_code=language)
    assert transcript.text.split() == [], [
        (s.text[:40], s.no_speech_prob, s.avg_logprob, s.compression_ratio, s.temperature)
        for s in transcript.segments
    ]
    assert list(transcript.segments) == []


@pytest.mark.parametrize(
    ("clip_id", "language", "vad", "silence"),
    [
        ("en_jfk", "en", True, 60.0),
        ("ko_pv_leopard_test", "ko", True, 60.0),
        # With the VAD off the model sees the silence (and invents "You" or "수고하셨습니다."
        # over it); text over digital silence is dropped. 30 s keeps the test quick.
        ("en_jfk", "en", False, 30.0),
        ("ko_pv_leopard_test", "ko", False, 30.0),
    ],
)
def test_speech_then_silence_has_words_only_where_speech_is(
    transcriber: processes.ServiceProcess, clip_id: str, language: str, vad: bool, silence: float
) -> None:
    content, speech_end = nonspeech.speech_then_silence(clip_id, silence)
    transcript = transcribe(transcriber.addr or "", content, language_code=language, vad_filter=vad)
    assert transcript.segments, "the speech itself was lost"
    late = [s for s in transcript.segments if s.start_seconds > speech_end + 0.5]
    assert late == [], [(s.start_seconds, s.text) for s in late]
    assert transcript.segments[-1].end_seconds <= speech_end + 1.0


def test_language_is_detected_on_the_shared_clips(
    transcriber: processes.ServiceProcess,
) -> None:
    """Every short shared clip (the long one is covered by `make eval --detect`)."""
    clips = evalset.clips(max_seconds=30)

    def detected(clip: evalset.Clip) -> str:
        # Greedy decoding keeps this quick; detection runs before decoding and is the same.
        content = clip.read()
        return transcribe(transcriber.addr or "", content, preset=tpb.PRESET_FAST).language_code

    with ThreadPoolExecutor(2) as pool:
        languages = list(pool.map(detected, clips))
    wrong = [(c.id, got) for c, got in zip(clips, languages, strict=True) if got != c.language]
    print(f"language detected right on {len(clips) - len(wrong)}/{len(clips)} clips")
    assert len(wrong) <= 0.05 * len(clips), wrong
