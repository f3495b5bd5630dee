"""Live sessions (StreamingRecognize) through the real mesh: gateway, scheduler, the direct
transcriber's session places and the real model on real speech (issue 19).

Real-time pacing only where it is the point (the Korean and English clips, and the watcher that
follows a session live); everything else is sent as fast as the mesh takes it. The shared mesh
ends sessions after 3 s without audio (tests/e2e/conftest.py).
"""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

import grpc
import numpy as np
import pytest
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from devsupport import audio, evalset, scoring
from devsupport.mesh import Mesh
from sayit.common.v1 import audio_pb2, job_pb2, streaming_pb2
from sayit.common.v1 import transcription_pb2 as tpb
from sayit.speech.v1 import speech_service_pb2 as pb
from sayit.speech.v1 import speech_service_pb2_grpc as pb_grpc
from services.common.audio import decode, encode_wav

pytestmark = pytest.mark.model

RATE = 16000
CHUNK_SECONDS = 0.1
IDLE_SECONDS = 3.0  # SAYIT_STREAM_IDLE_SECONDS of the shared mesh


def linear16(samples: np.ndarray) -> bytes:
    return (np.clip(samples, -1.0, 1.0) * 32767).astype("<i2").tobytes()


def float32(samples: np.ndarray) -> bytes:
    return samples.astype("<f4").tobytes()


def config(
    language: str,
    *,
    interim: bool = True,
    encoding: int = streaming_pb2.AUDIO_ENCODING_LINEAR16,
) -> streaming_pb2.StreamingRecognitionConfig:
    return streaming_pb2.StreamingRecognitionConfig(
        config=tpb.TranscriptionConfig(language_code=language),
        encoding=encoding,  # type: ignore[arg-type]
        sample_rate_hertz=RATE,
        interim_results=interim,
    )


@dataclass
class Sent:
    """What the request stream did, and when (monotonic seconds)."""

    first_audio: float = 0.0
    half_closed: float = 0.0
    done: threading.Event = field(default_factory=threading.Event)


def requests(
    first: streaming_pb2.StreamingRecognitionConfig | None,
    pcm: bytes,
    *,
    width: int = 2,
    realtime: bool = False,
    hold: float = 0.0,
    sent: Sent | None = None,
    keep_alive: bool = False,
) -> Iterator[pb.StreamingRecognizeRequest]:
    """The config, then the audio in 100 ms messages (at its own pace with `realtime`), then
    (with `hold`) the stream kept open that long before the half-close: without audio, or
    with `keep_alive` sending silence at real-time pace."""
    sent = sent or Sent()
    if first is not None:
        yield pb.StreamingRecognizeRequest(streaming_config=first)
    step = int(RATE * CHUNK_SECONDS) * width
    sent.first_audio = start = time.monotonic()
    for n, offset in enumerate(range(0, len(pcm), step)):
        if realtime:
            time.sleep(max(0.0, start + n * CHUNK_SECONDS - time.monotonic()))
        yield pb.StreamingRecognizeRequest(audio_content=pcm[offset : offset + step])
    if hold and keep_alive:
        quiet = bytes(step)
        until = time.monotonic() + hold
        while not sent.done.wait(CHUNK_SECONDS) and time.monotonic() < until:
            yield pb.StreamingRecognizeRequest(audio_content=quiet)
    elif hold:
        sent.done.wait(hold)
    sent.half_closed = time.monotonic()


@dataclass
class Heard:
    responses: list[pb.StreamingRecognizeResponse]
    times: list[float]

    @property
    def name(self) -> str:
        return self.responses[0].job_name

    @property
    def finals(self) -> list[pb.StreamingRecognizeResponse]:
        return [r for r in self.responses if r.HasField("result") and r.result.is_final]

    @property
    def text(self) -> str:
        return " ".join(r.result.text for r in self.finals)

    def first_interim_before_final(self) -> bool:
        kinds = [r.result.is_final for r in self.responses if r.HasField("result")]
        return False in kinds and kinds.index(False) < kinds.index(True)


def listen(call: Iterator[pb.StreamingRecognizeResponse]) -> Heard:
    heard = Heard([], [])
    for response in call:
        heard.responses.append(response)
        heard.times.append(time.monotonic())
    return heard


def transcribe_rate(
    speech: pb_grpc.SpeechServiceStub, wav: bytes, reference: str, lang: str
) -> float:
    """The error rate of Transcribe on the same audio: the bar the live finals are held to."""
    reply = speech.Transcribe(
        pb.TranscribeRequest(
            audio=audio_pb2.Audio(content=wav, filename="same.wav"),
            config=tpb.TranscriptionConfig(language_code=lang),
        ),
        timeout=120,
    )
    return scoring.score(reference, reply.transcript.text, lang).rate


def assert_accurate(
    speech: pb_grpc.SpeechServiceStub, samples: np.ndarray, reference: str, lang: str, text: str
) -> None:
    live = scoring.score(reference, text, lang).rate
    files = transcribe_rate(speech, encode_wav(samples), reference, lang)
    # The goal (1.5 points, pooled over the whole set) is measured by `make bench`;
    # on one clip a point is a character or two, so the bar here is looser.
    assert live <= files + 0.1, (text, reference, live, files)


def get(speech: pb_grpc.SpeechServiceStub, name: str) -> job_pb2.TranscriptionJob:
    return speech.GetJob(pb.GetJobRequest(name=name), timeout=10).job


def test_korean_in_real_time_interim_then_final_results_a_second_caller_watches_live(
    speech: pb_grpc.SpeechServiceStub,
) -> None:
    clips = [evalset.clip("ko_pv_leopard_test"), evalset.clip("ko_deeply_sub100121a00060")]
    wav, reference = audio.joined(clips, silence_seconds=1.5)
    samples = decode(wav, "joined.wav")
    sent = Sent()
    call = speech.StreamingRecognize(
        requests(config("ko"), linear16(samples), realtime=True, sent=sent), timeout=120
    )
    first = next(call)
    assert first.job_name.startswith("jobs/") and first.WhichOneof("response") is None
    watched: list[tuple[float, str]] = []

    def watch() -> None:
        for reply in speech.WatchJob(pb.WatchJobRequest(name=first.job_name), timeout=120):
            watched.append((time.monotonic(), str(reply.event.WhichOneof("kind"))))

    watcher = threading.Thread(target=watch)
    watcher.start()
    heard = listen(call)
    heard.responses.insert(0, first)
    watcher.join(30)
    assert {r.job_name for r in heard.responses} == {first.job_name}
    assert heard.first_interim_before_final()
    assert len(heard.finals) >= 2
    # The second caller had the first utterance's final before the session ended.
    segments = [t for t, kind in watched if kind == "segment"]
    assert segments and segments[0] < sent.half_closed
    assert watched[0][1] == "accepted" and watched[-1][1] == "completed"
    assert_accurate(speech, samples, reference, "ko", heard.text)
    job = get(speech, first.job_name)
    assert (job.state, job.routing) == (job_pb2.JOB_STATE_SUCCEEDED, job_pb2.ROUTING_DIRECT)
    assert scoring.normalize(job.transcript.text) == scoring.normalize(heard.text)
    assert len(job.transcript.segments) == len(heard.finals)
    assert job.transcript.audio_duration_seconds == pytest.approx(len(samples) / RATE, abs=0.2)


def test_english_in_real_time_interim_then_final_results(
    speech: pb_grpc.SpeechServiceStub,
) -> None:
    clip = evalset.clip("en_pv_leopard_test")
    samples = decode(clip.read(), clip.path.name)
    call = speech.StreamingRecognize(
        requests(config("en"), linear16(samples), realtime=True), timeout=120
    )
    heard = listen(call)
    assert heard.first_interim_before_final()
    assert_accurate(speech, samples, clip.reference, "en", heard.text)
    assert get(speech, heard.name).state == job_pb2.JOB_STATE_SUCCEEDED


def test_audio_faster_than_real_time_is_taken_as_fast_as_the_slot_allows(
    speech: pb_grpc.SpeechServiceStub,
) -> None:
    clip = evalset.clip("en_jfk")
    samples = decode(clip.read(), clip.path.name)
    sent = Sent()
    call = speech.StreamingRecognize(
        requests(
            config("en", interim=False, encoding=streaming_pb2.AUDIO_ENCODING_FLOAT32),
            float32(samples),
            width=4,
            sent=sent,
        ),
        timeout=120,
    )
    heard = listen(call)
    # The half-close came with the last word: its utterance was flushed, not dropped.
    assert heard.finals and heard.finals[-1].result.end_seconds > clip.duration_seconds - 2
    assert heard.times[-1] - sent.first_audio < clip.duration_seconds
    assert_accurate(speech, samples, clip.reference, "en", heard.text)
    assert get(speech, heard.name).state == job_pb2.JOB_STATE_SUCCEEDED


def test_cancelling_the_job_ends_the_stream_cancelled(speech: pb_grpc.SpeechServiceStub) -> None:
    sent = Sent()
    silence = linear16(np.zeros(RATE, dtype=np.float32))
    call = speech.StreamingRecognize(
        requests(config("ko"), silence, hold=60, sent=sent), timeout=120
    )
    name = next(call).job_name
    try:
        speech.CancelJob(pb.CancelJobRequest(name=name), timeout=10)
        with pytest.raises(grpc.RpcError) as raised:
            listen(call)
    finally:
        sent.done.set()
    assert raised.value.code() == grpc.StatusCode.CANCELLED
    assert raised.value.details() == f"job {name} was cancelled"
    assert get(speech, name).state == job_pb2.JOB_STATE_CANCELLED


def test_a_session_without_audio_for_the_idle_time_ends_ok_with_its_finals(
    speech: pb_grpc.SpeechServiceStub,
) -> None:
    clip = evalset.clip("ko_pv_leopard_test")
    samples = decode(clip.read(), clip.path.name)
    sent = Sent()
    call = speech.StreamingRecognize(
        requests(config("ko", interim=False), linear16(samples), hold=60, sent=sent),
        timeout=120,
    )
    try:
        heard = listen(call)  # ends by itself: the caller never half-closes
        ended = time.monotonic()
    finally:
        sent.done.set()
    assert IDLE_SECONDS <= ended - sent.first_audio < IDLE_SECONDS + 10
    assert heard.finals
    job = get(speech, heard.name)
    assert job.state == job_pb2.JOB_STATE_SUCCEEDED and job.transcript.text


def test_no_free_session_place_is_resource_exhausted_with_a_retry_hint(
    speech: pb_grpc.SpeechServiceStub, mesh: Mesh
) -> None:
    silence = linear16(np.zeros(RATE // 10, dtype=np.float32))
    release = Sent()
    held = []
    try:
        for _ in range(4):  # the direct transcriber's (and the scheduler's) places
            call = speech.StreamingRecognize(
                requests(config("ko"), silence, hold=60, sent=release), timeout=120
            )
            held.append((call, next(call).job_name))
        refused = speech.StreamingRecognize(
            requests(config("ko"), b"", hold=10, sent=release), timeout=30
        )
        with pytest.raises(grpc.RpcError) as raised:
            next(refused)
    finally:
        release.done.set()
    error = raised.value
    assert error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    status = rpc_status.from_call(error)
    assert status is not None
    retry = error_details_pb2.RetryInfo()
    assert any(detail.Unpack(retry) for detail in status.details)
    assert retry.retry_delay.seconds > 0
    for call, name in held:
        listen(call)  # half-closed by the release: each ends OK
        assert get(speech, name).state == job_pb2.JOB_STATE_SUCCEEDED


@pytest.mark.parametrize(
    ("first", "field"),
    [
        (None, "streaming_config"),
        (
            streaming_pb2.StreamingRecognitionConfig(
                encoding=streaming_pb2.AUDIO_ENCODING_LINEAR16
            ),
            "streaming_config.sample_rate_hertz",
        ),
        (
            streaming_pb2.StreamingRecognitionConfig(encoding=9, sample_rate_hertz=RATE),  # type: ignore[arg-type]
            "streaming_config.encoding",
        ),
    ],
)
def test_a_bad_first_message_is_invalid_argument_naming_the_field(
    speech: pb_grpc.SpeechServiceStub,
    first: streaming_pb2.StreamingRecognitionConfig | None,
    field: str,
) -> None:
    release = Sent()
    one = linear16(np.zeros(RATE // 10, dtype=np.float32)) if first is None else b""
    call = speech.StreamingRecognize(requests(first, one, hold=10, sent=release), timeout=30)
    try:
        with pytest.raises(grpc.RpcError) as raised:
            next(call)
    finally:
        release.done.set()
    error = raised.value
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    status = rpc_status.from_call(error)
    assert status is not None
    bad = error_details_pb2.BadRequest()
    assert any(detail.Unpack(bad) for detail in status.details)
    assert bad.field_violations[0].field == field


def test_a_caller_that_goes_away_cancels_its_session(speech: pb_grpc.SpeechServiceStub) -> None:
    sent = Sent()
    silence = linear16(np.zeros(RATE, dtype=np.float32))
    call = speech.StreamingRecognize(
        requests(config("ko"), silence, hold=60, sent=sent), timeout=120
    )
    name = next(call).job_name
    call.cancel()
    sent.done.set()
    deadline = time.monotonic() + 10
    while get(speech, name).state == job_pb2.JOB_STATE_RUNNING and time.monotonic() < deadline:
        time.sleep(0.05)
    assert get(speech, name).state == job_pb2.JOB_STATE_CANCELLED


def test_continuous_speech_longer_than_30_s_is_cut_into_finals_of_at_most_30_s(
    speech: pb_grpc.SpeechServiceStub,
) -> None:
    wav, reference, _ = audio.korean_long(min_seconds=35.0)
    samples = decode(wav, "long.wav")
    # Pauses between the clips (0.6 s) are shorter than the endpoint silence asked for: only
    # the 30 s window cuts the speech, at its best pause. Sent faster than real time.
    first = config("ko", interim=False)
    first.endpointing.silence_seconds = 5.0
    heard = listen(speech.StreamingRecognize(requests(first, linear16(samples)), timeout=180))
    spans = [r.result.end_seconds - r.result.start_seconds for r in heard.finals]
    assert len(spans) >= 2 and max(spans) <= 30.5, spans
    assert scoring.score(reference, heard.text, "ko").rate < 0.3, heard.text
    job = get(speech, heard.name)
    assert job.state == job_pb2.JOB_STATE_SUCCEEDED
    assert job.transcript.audio_duration_seconds == pytest.approx(len(samples) / RATE, abs=0.2)


@pytest.mark.parametrize("service", ["gateway", "scheduler"])
def test_sigterm_flushes_live_sessions_keeps_their_jobs_and_says_unavailable(
    speech: pb_grpc.SpeechServiceStub, mesh: Mesh, service: str
) -> None:
    clip = evalset.clip("ko_pv_leopard_test")
    samples = decode(clip.read(), clip.path.name)
    sent = Sent()
    first = config("ko", interim=False)
    call = speech.StreamingRecognize(
        requests(first, linear16(samples), hold=60, keep_alive=True, sent=sent), timeout=120
    )
    process = mesh.processes[service]
    try:
        name = next(call).job_name
        heard = []
        for response in call:  # the clip's final: then the session only hears silence
            heard.append(response)
            if response.result.is_final:
                break
        process.signal(signal.SIGTERM)
        with pytest.raises(grpc.RpcError) as raised:
            listen(call)
        assert process.process is not None and process.process.wait(30) == 0
    finally:
        sent.done.set()
        mesh.restart(service)
    assert raised.value.code() == grpc.StatusCode.UNAVAILABLE
    assert "shutting down" in (raised.value.details() or "")
    assert name in (raised.value.details() or "")
    job = get(speech, name)
    assert job.state == job_pb2.JOB_STATE_SUCCEEDED
    assert scoring.normalize(job.transcript.text) == scoring.normalize(heard[-1].result.text)
