"""The Python client's live recognition (`SayItClient.stream`, `stream_file`) against a small real
gRPC SpeechService (tests.support.live_speech): what it sends (the config first, the audio as
given, paced when asked), the typed updates in the contract's order, and errors mapped like the
client's other calls."""

from __future__ import annotations

import io
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import grpc
import numpy as np
import pytest
import soundfile as sf

from sayit.common.v1 import streaming_pb2 as spb
from sayit.common.v1 import transcription_pb2 as tpb
from services.client import (
    ClientError,
    LiveResult,
    SayItClient,
    SessionStarted,
    SpeechEnded,
    SpeechStarted,
)
from services.client.live import chunk_bytes, file_chunks, paced, read_chunks
from services.common.errors import BadAudio, InvalidArgument, ResourceExhausted
from tests.support.live_speech import JOB, LiveScript, LiveSpeech, result, serve

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
def script() -> LiveScript:
    return LiveScript()


@pytest.fixture
def speech(script: LiveScript) -> Iterator[tuple[LiveSpeech, str]]:
    server, service, addr = serve(script)
    try:
        yield service, addr
    finally:
        server.stop(0)


def client(addr: str) -> SayItClient:
    return SayItClient(addr, api_key="k-live", timeout=30)


def pcm(seconds: float, rate: int = 16_000) -> bytes:
    samples = (np.sin(np.arange(int(seconds * rate)) / 10) * 3000).astype("<i2")
    return samples.tobytes()


def test_updates_come_typed_in_the_contracts_order(speech: tuple[LiveSpeech, str]) -> None:
    service, addr = speech
    audio = pcm(1.0)
    chunks = list(read_chunks(io.BytesIO(audio), 3200))
    with client(addr) as sayit:
        session = sayit.stream(chunks, language="ko", silence_seconds=0.8, word_timestamps=True)
        updates = list(session)
    assert updates[0] == SessionStarted(JOB)
    kinds = [
        type(u).__name__ + (":final" if getattr(u, "is_final", False) else "") for u in updates
    ]
    assert kinds == [
        "SessionStarted",
        "SpeechStarted",
        "LiveResult",
        "LiveResult",
        "SpeechEnded",
        "LiveResult:final",
        "SpeechStarted",
        "LiveResult",
        "SpeechEnded",
        "LiveResult:final",
    ]
    assert updates[1] == SpeechStarted(JOB, 1, 0.3)
    assert updates[4] == SpeechEnded(JOB, 1, 1.9)
    interim = updates[3]
    assert isinstance(interim, LiveResult)
    assert (interim.text, interim.stability, interim.end_seconds) == ("안녕하세요", 0.8, 1.6)
    assert all(u.job_name == JOB for u in updates)
    assert session.job_name == JOB
    assert [r.text for r in session.finals] == ["안녕하세요.", "반갑습니다."]
    assert session.transcript == "안녕하세요. 반갑습니다."

    # What went out: the config first, then every chunk as given, in order; the API key.
    (config,) = service.configs
    assert config.encoding == spb.AUDIO_ENCODING_LINEAR16
    assert config.sample_rate_hertz == 16_000 and config.audio_channel_count == 1
    assert config.interim_results is True
    assert config.config.language_code == "ko" and config.config.word_timestamps is True
    assert config.endpointing.silence_seconds == pytest.approx(0.8)
    assert service.chunks == chunks and service.audio == audio
    assert ("authorization", "Bearer k-live") in service.metadata


def test_config_options_reach_the_service(speech: tuple[LiveSpeech, str]) -> None:
    service, addr = speech
    with client(addr) as sayit:
        session = sayit.stream(
            [b"\0\0\0\0" * 100],
            sample_rate_hertz=8000,
            encoding="float32",
            channels=2,
            interim_results=False,
            max_utterance_seconds=12,
            speech_threshold=0.6,
            config=tpb.TranscriptionConfig(language_code="en", preset=tpb.PRESET_FAST),
        )
        finals = [r.text for r in session.results(interim=False)]
    assert finals == ["안녕하세요.", "반갑습니다."]
    (config,) = service.configs
    assert config.encoding == spb.AUDIO_ENCODING_FLOAT32
    assert (config.sample_rate_hertz, config.audio_channel_count) == (8000, 2)
    assert config.interim_results is False
    assert config.endpointing.max_utterance_seconds == 12
    assert config.endpointing.speech_threshold == pytest.approx(0.6)
    assert config.config.language_code == "en" and config.config.preset == tpb.PRESET_FAST


def test_an_unknown_encoding_is_refused_before_calling(speech: tuple[LiveSpeech, str]) -> None:
    service, addr = speech
    with client(addr) as sayit, pytest.raises(ValueError, match="linear16, float32"):
        sayit.stream([b"\0\0"], encoding="mulaw")
    assert service.configs == []


def test_no_free_session_place_is_resource_exhausted_with_the_hint(
    speech: tuple[LiveSpeech, str], script: LiveScript
) -> None:
    _, addr = speech
    script.refuse = ResourceExhausted(
        "no transcriber has a free live-session place; retry in 5 s", retry_after_seconds=5
    )
    with client(addr) as sayit, pytest.raises(ClientError) as raised:
        list(sayit.stream([pcm(0.1)]))
    assert raised.value.code == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert raised.value.retry_after == 5.0
    assert "free live-session place" in raised.value.message


def test_a_failure_mid_session_raises_after_the_updates_before_it(
    speech: tuple[LiveSpeech, str], script: LiveScript
) -> None:
    _, addr = speech
    script.answer_while_sending = True
    script.fail_after_chunks = 3
    script.failure = InvalidArgument("audio_content: 3 bytes is not whole samples", "x")
    seen: list[object] = []
    with client(addr) as sayit, pytest.raises(ClientError) as raised:
        for update in sayit.stream([pcm(0.1)] * 5):
            seen.append(update)
    assert raised.value.code == grpc.StatusCode.INVALID_ARGUMENT
    assert raised.value.message.startswith("audio_content: 3 bytes")
    assert seen[0] == SessionStarted(JOB) and len(seen) == 3  # job name, 2 answered chunks


def test_leaving_the_loop_cancels_the_call(speech: tuple[LiveSpeech, str]) -> None:
    service, addr = speech
    endless_stop = threading.Event()

    def endless() -> Iterator[bytes]:
        while not endless_stop.is_set():
            time.sleep(0.01)
            yield pcm(0.01)

    try:
        with client(addr) as sayit:
            for update in sayit.stream(endless()):
                assert update == SessionStarted(JOB)
                break
            assert service.cancelled.wait(10)
    finally:
        endless_stop.set()


def test_paced_sends_at_real_time() -> None:
    rate = 16_000 * 2
    chunks = [b"\0" * 3200] * 5  # 0.5 s
    started = time.monotonic()
    times = []
    for _ in paced(chunks, rate):
        times.append(time.monotonic() - started)
    # Each chunk when the audio it ends with would have been recorded (0.1, 0.2, ... 0.5 s),
    # never earlier; late only by what a busy machine adds, without adding up.
    assert all(t >= 0.1 * (n + 1) - 0.005 for n, t in enumerate(times)), times
    assert times[-1] < 0.5 + 0.25, times


def test_paced_stops_when_told() -> None:
    stop = threading.Event()
    sent = []
    for chunk in paced([b"\0" * 3200] * 50, 32_000, stop=stop):
        sent.append(chunk)
        if len(sent) == 2:
            stop.set()
    assert len(sent) == 2


def test_a_file_is_decoded_to_16k_mono_linear16_in_100ms_chunks(tmp_path: Path) -> None:
    path = tmp_path / "stereo.wav"
    rate, seconds = 44_100, 1.05
    t = np.arange(int(rate * seconds)) / rate
    stereo = np.stack([np.sin(2 * np.pi * 440 * t), np.sin(2 * np.pi * 660 * t)], axis=1) * 0.3
    sf.write(path, stereo, rate, subtype="PCM_16")
    chunks = list(file_chunks(path, realtime=False))
    assert all(len(c) == chunk_bytes(16_000) == 3200 for c in chunks[:-1])
    total = sum(len(c) for c in chunks)
    assert total // 2 == pytest.approx(16_000 * seconds, abs=20)
    samples = np.frombuffer(b"".join(chunks), dtype="<i2")
    assert 0.2 < np.abs(samples).max() / 32768 < 0.7  # the two channels mixed, not clipped


def test_a_file_that_is_not_audio_fails_before_any_call(tmp_path: Path) -> None:
    path = tmp_path / "notes.wav"
    path.write_text("not audio")
    with pytest.raises(BadAudio):
        file_chunks(path)


def test_stream_file_sends_the_decoded_file(speech: tuple[LiveSpeech, str], tmp_path: Path) -> None:
    service, addr = speech
    path = tmp_path / "a.flac"
    sf.write(path, np.frombuffer(pcm(0.35), dtype="<i2"), 16_000, format="FLAC")
    with client(addr) as sayit:
        finals = list(sayit.stream_file(path, realtime=False, language="ko").results(interim=False))
    assert [r.text for r in finals] == ["안녕하세요.", "반갑습니다."]
    assert [len(c) for c in service.chunks] == [3200, 3200, 3200, 1600]
    assert service.audio == pcm(0.35)


def test_result_helper_builds_finals() -> None:
    response = result(3, "x", 1.0, 2.0, final=True)
    assert response.result.stability == 1.0 and response.result.utterance == 3


def test_an_audio_source_that_fails_raises_its_own_error(speech: tuple[LiveSpeech, str]) -> None:
    service, addr = speech

    def broken() -> Iterator[bytes]:
        yield pcm(0.1)
        raise OSError("the microphone went away")

    with client(addr) as sayit, pytest.raises(OSError, match="the microphone went away"):
        list(sayit.stream(broken()))
    assert service.cancelled.wait(10)  # cancelled, not half-closed as if the audio had ended
