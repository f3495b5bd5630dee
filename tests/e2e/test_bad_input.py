"""The bad-input corpus, through the real gateway of a real mesh with the default limits.

Every case asserts the exact status code and the words of a message a caller can act on; audio
in odd but valid shapes (8-bit, 24-bit, float, 8 kHz, 48 kHz, 6 channels, a video's sound track,
unicode prompts) must transcribe. Afterwards no job is left running, no worker is stuck and every
service still answers.
"""

from __future__ import annotations

import functools
import gzip
import io
import json
import struct
import time
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import grpc
import numpy as np
import pytest
from google.rpc import error_details_pb2
from grpc_health.v1 import health_pb2
from grpc_status import rpc_status
from rq import Worker
from rq.registry import StartedJobRegistry

from devsupport import evalset, processes
from devsupport.mesh import Mesh
from sayit.common.v1 import audio_pb2, job_pb2
from sayit.common.v1 import transcription_pb2 as tpb
from sayit.speech.v1 import speech_service_pb2 as pb
from sayit.speech.v1 import speech_service_pb2_grpc as pb_grpc
from services.common.audio import SAMPLE_RATE, decode
from tests.support.encode import av_bytes, resample, sf_bytes, silent_flac, video_only

pytestmark = pytest.mark.model

OK = grpc.StatusCode.OK
INVALID = grpc.StatusCode.INVALID_ARGUMENT
EXHAUSTED = grpc.StatusCode.RESOURCE_EXHAUSTED
NOT_FOUND = grpc.StatusCode.NOT_FOUND
MIB = 1 << 20
DEFAULT_MAX_BYTES = 100 * MIB  # SAYIT_MAX_REQUEST_BYTES's default
ENDED = {job_pb2.JOB_STATE_SUCCEEDED, job_pb2.JOB_STATE_FAILED, job_pb2.JOB_STATE_CANCELLED}
UNKNOWN_JOB = "jobs/" + "0" * 32


# --- material ------------------------------------------------------------------------------------


@functools.cache
def cheetah() -> np.ndarray:
    """'Today only platforms one and three are used.' (4.5 s), 16 kHz mono float32."""
    return decode(evalset.clip("en_pv_cheetah_test").read())


def at(rate: int) -> np.ndarray:
    return resample(cheetah(), rate)


@functools.cache
def noisy_tone(seconds: float = 4.0, rate: int = 44_100) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    rng = np.random.default_rng(7)
    return (0.5 * np.sin(2 * np.pi * 440 * t) + 0.1 * rng.standard_normal(len(t))).astype(
        np.float32
    )


def wav_with_data_size(declared_bytes: int, present_bytes: int, rate: int = 16_000) -> bytes:
    fmt = struct.pack("<HHIIHH", 1, 1, rate, rate * 2, 2, 16)
    data = (np.sin(np.arange(present_bytes // 2) * 0.1) * 10_000).astype("<i2").tobytes()
    body = b"WAVE" + b"fmt " + struct.pack("<I", 16) + fmt + b"data"
    body += struct.pack("<I", declared_bytes) + data
    return b"RIFF" + struct.pack("<I", len(body)) + body


def random_text(length: int, seed: int) -> str:
    """Printable ASCII, Hangul, CJK and emoji, as a hostile caller would send."""
    rng = np.random.default_rng(seed)
    ranges = [(0x20, 0x7E), (0xAC00, 0xD7A3), (0x4E00, 0x9FFF), (0x1F300, 0x1F5FF)]
    return "".join(chr(int(rng.integers(*ranges[int(rng.integers(4))]))) for _ in range(length))


def half(content: bytes) -> bytes:
    return content[: len(content) // 2]


def noise_wav(seconds: float) -> bytes:
    rng = np.random.default_rng(11)
    return sf_bytes(
        (rng.standard_normal(int(seconds * 8000)) * 0.05).astype(np.float32), 8000, "WAV", "PCM_16"
    )


def zip_of_zeros() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("audio.wav", bytes(50 * MIB))
    return buffer.getvalue()


# --- cases ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Case:
    id: str
    rpc: str
    request: Callable[[], Any]
    code: grpc.StatusCode
    message: str = ""  # words the status message must contain
    # For calls that succeed: a check on the reply.
    check: Callable[[Any], None] | None = None
    field: str = ""  # the BadRequest field violation expected, when the gateway can name it


def transcribe(content: bytes, filename: str = "", **config: Any) -> Callable[[], Any]:
    def build() -> pb.TranscribeRequest:
        return pb.TranscribeRequest(
            audio=audio_pb2.Audio(content=content, filename=filename),
            config=tpb.TranscriptionConfig(**config),
        )

    return build


def lazy(make: Callable[[], bytes], filename: str = "", **config: Any) -> Callable[[], Any]:
    return lambda: transcribe(make(), filename, **config)()


def says_platforms(reply: pb.TranscribeResponse) -> None:
    assert reply.WhichOneof("result") == "transcript", reply
    assert "platforms" in reply.transcript.text.lower(), reply.transcript.text


def is_a_transcript(reply: pb.TranscribeResponse) -> None:
    assert reply.WhichOneof("result") == "transcript", reply
    assert reply.transcript.audio_duration_seconds == pytest.approx(1.0, abs=0.05)


def says_nothing(reply: pb.TranscribeResponse) -> None:
    assert reply.WhichOneof("result") == "transcript", reply
    assert reply.transcript.text.strip() == "", reply.transcript.text
    assert reply.transcript.audio_duration_seconds == pytest.approx(5.0, abs=0.1)


def queued_long_job(reply: pb.TranscribeResponse) -> None:
    assert reply.WhichOneof("result") == "job", reply
    assert reply.job.routing == job_pb2.ROUTING_QUEUED
    assert reply.job.audio_duration_seconds == pytest.approx(600.0, abs=0.5)


def must_transcribe(id: str, make: Callable[[], bytes], filename: str = "") -> Case:
    return Case(
        id, "Transcribe", lazy(make, filename, language_code="en"), OK, check=says_platforms
    )


def bad_audio(id: str, make: Callable[[], bytes], message: str, filename: str = "") -> Case:
    return Case(id, "Transcribe", lazy(make, filename), INVALID, message)


NOT_AUDIO = "not a recognised audio format (supported: WAV, FLAC, OGG/Opus"
TEXT = b"Meeting notes: this is not audio at all.\n" * 50

CASES = [
    # Odd but valid audio: must transcribe.
    must_transcribe("wav-8-bit", lambda: sf_bytes(cheetah(), 16_000, "WAV", "PCM_U8")),
    must_transcribe("wav-24-bit", lambda: sf_bytes(cheetah(), 16_000, "WAV", "PCM_24")),
    must_transcribe("wav-32-bit-float", lambda: sf_bytes(cheetah(), 16_000, "WAV", "FLOAT")),
    must_transcribe("wav-8-khz", lambda: sf_bytes(at(8000), 8000, "WAV", "PCM_16")),
    must_transcribe("wav-48-khz", lambda: sf_bytes(at(48_000), 48_000, "WAV", "PCM_16")),
    must_transcribe(
        "wav-6-channels",
        lambda: sf_bytes(np.repeat(cheetah()[:, None], 6, axis=1), 16_000, "WAV", "PCM_16"),
    ),
    must_transcribe("flac-44-khz", lambda: sf_bytes(at(44_100), 44_100, "FLAC", "PCM_16")),
    must_transcribe("ogg-opus", lambda: sf_bytes(at(48_000), 48_000, "OGG", "OPUS")),
    must_transcribe("mp3", lambda: sf_bytes(cheetah(), 16_000, "MP3", "MPEG_LAYER_III")),
    must_transcribe(
        "m4a-aac-5.1",
        lambda: av_bytes(np.repeat(at(48_000)[:, None], 6, axis=1), 48_000, "mp4", "aac"),
        "talk.m4a",
    ),
    must_transcribe("webm-opus", lambda: av_bytes(at(48_000), 48_000, "webm", "libopus")),
    must_transcribe(
        "video-with-audio-track",
        lambda: av_bytes(at(44_100), 44_100, "mp4", "aac", video=True),
        "meeting.mp4",
    ),
    Case(
        "unicode-prompt-korean-emoji",
        "Transcribe",
        lambda: transcribe(
            sf_bytes(cheetah(), 16_000, "WAV", "PCM_16"),
            "발표 🎤.wav",
            language_code="en",
            initial_prompt="회의록 📝: 플랫폼 one and three — «quotes» ‘curly’ 中文 العربية",
            hotwords="platforms, 🚉, naïve, Ｆｕｌｌｗｉｄｔｈ",
        )(),
        OK,
        check=says_platforms,
    ),
    Case(
        "unicode-prompt-control-and-combining",
        "Transcribe",
        lambda: transcribe(
            sf_bytes(cheetah(), 16_000, "WAV", "PCM_16"),
            language_code="EN-us",
            initial_prompt="zero\u200bwidth, e\u0301, bidi \u202eevil\u202c, tab\tnewline\n",
            hotwords="\U0001f600" * 200,
        )(),
        OK,
        check=says_platforms,
    ),
    # Found by the fuzzer: prompt + hotwords at their character limits overflowed Whisper's 448
    # positions (INTERNAL) and made one second of audio take a minute to decode.
    Case(
        "prompt-and-hotwords-at-the-limit",
        "Transcribe",
        lambda: transcribe(
            sf_bytes(cheetah()[16_000:32_000], 16_000, "WAV", "PCM_16"),
            initial_prompt=random_text(1000, 1),
            hotwords=random_text(1000, 2),
            preset=tpb.PRESET_FAST,  # the overflow does not depend on it; keeps the test quick
        )(),
        OK,
        check=is_a_transcript,
    ),
    Case(
        "pure-silence",
        "Transcribe",
        lambda: transcribe(sf_bytes(np.zeros(5 * 16_000, np.float32), 16_000, "WAV", "PCM_16"))(),
        OK,
        check=says_nothing,
    ),
    Case(
        "ten-minutes-of-noise",
        "Transcribe",
        lazy(lambda: noise_wav(600.0), "noise.wav"),
        OK,
        check=queued_long_job,
    ),
    # Not audio, or broken audio.
    bad_audio(
        "random-bytes",
        lambda: np.random.default_rng(0).integers(0, 256, 20_000, dtype=np.uint8).tobytes(),
        NOT_AUDIO,
    ),
    Case(
        "empty-content",
        "Transcribe",
        transcribe(b""),
        INVALID,
        "audio.content is empty",
        field="audio.content",
    ),
    Case(
        "no-audio-message",
        "Transcribe",
        lambda: pb.TranscribeRequest(),
        INVALID,
        "audio.content is empty",
    ),
    bad_audio(
        "wav-header-without-samples",
        lambda: sf_bytes(np.zeros((0, 1), np.float32), 16_000, "WAV", "PCM_16"),
        "audio contains no samples",
    ),
    bad_audio(
        "wav-header-lies-about-length",
        lambda: wav_with_data_size(3 * 32_000, 32_000),
        "audio is truncated: the header declares 3 s but only 1 s could be decoded",
    ),
    bad_audio(
        "wav-header-only",
        lambda: sf_bytes(noisy_tone(), 44_100, "WAV", "PCM_16")[:44],
        "audio is truncated: the header declares 4 s but only 0 s could be decoded",
    ),
    bad_audio(
        "truncated-mp3",
        lambda: half(av_bytes(noisy_tone(), 44_100, "mp3", "libmp3lame")),
        "audio is truncated: the header declares 4",
    ),
    bad_audio(
        "mp3-first-300-bytes",
        lambda: av_bytes(noisy_tone(), 44_100, "mp3", "libmp3lame")[:300],
        "the data looks like MP3 but is damaged or truncated",
    ),
    bad_audio(
        "truncated-flac",
        lambda: half(sf_bytes(noisy_tone(), 44_100, "FLAC", "PCM_16")),
        "audio is truncated: the header declares 4",
    ),
    bad_audio(
        "flac-first-300-bytes",
        lambda: sf_bytes(noisy_tone(), 44_100, "FLAC", "PCM_16")[:300],
        "audio is truncated: the header declares 4 s but only 0 s could be decoded",
    ),
    bad_audio(
        "truncated-ogg-vorbis",
        lambda: sf_bytes(noisy_tone(), 44_100, "OGG", "VORBIS")[:300],
        "the data looks like OGG but is damaged or truncated",
    ),
    bad_audio(
        "truncated-ogg-opus",
        lambda: sf_bytes(resample(noisy_tone(4.0, 16_000), 48_000), 48_000, "OGG", "OPUS")[:300],
        "the data looks like OGG but is damaged or truncated",
    ),
    bad_audio(
        "truncated-m4a",
        lambda: half(av_bytes(noisy_tone(), 44_100, "mp4", "aac")),
        "the data looks like MP4/M4A but is damaged or truncated",
    ),
    bad_audio(
        "mp4-without-audio-stream",
        lambda: video_only("mp4", "mpeg4"),
        "could not decode audio 'clip.mp4': the mp4 file has no audio stream",
        "clip.mp4",
    ),
    bad_audio(
        "webm-without-audio-stream",
        lambda: video_only("webm", "libvpx"),
        "the webm file has no audio stream",
    ),
    bad_audio(
        "text-renamed-wav",
        lambda: TEXT,
        f"could not decode audio 'notes.wav': {NOT_AUDIO}",
        "notes.wav",
    ),
    bad_audio(
        "json-renamed-mp3",
        lambda: json.dumps({"audio": "base64?" * 100}).encode(),
        NOT_AUDIO,
        "speech.mp3",
    ),
    bad_audio(
        "gzip-bomb-renamed-wav",
        lambda: gzip.compress(bytes(50 * MIB)),
        "could not decode audio 'x.wav'",
        "x.wav",
    ),
    bad_audio("zip-bomb", zip_of_zeros, "could not decode audio", "audio.zip"),
    bad_audio(
        "flac-bomb-5-hours-of-silence",
        lambda: silent_flac(5 * 3600),
        "audio is 18000 s long; the limit is 14400 s (4 h)",
    ),
    bad_audio(
        "wav-header-declares-5-hours",
        lambda: wav_with_data_size(5 * 3600 * 32_000, 32_000),
        "audio is truncated: the header declares 18000 s but only 1 s",
    ),
    # Oversized messages.
    Case(
        "audio-just-over-the-request-limit",
        "Transcribe",
        transcribe(b"\0" * (DEFAULT_MAX_BYTES + 1)),
        EXHAUSTED,
        "audio.content is 100.0 MiB (104857601 bytes); the limit is 100.0 MiB (104857600 bytes) "
        "(SAYIT_MAX_REQUEST_BYTES)",
    ),
    Case(
        "message-far-over-the-limit",
        "Transcribe",
        transcribe(b"\0" * (DEFAULT_MAX_BYTES + 2 * MIB)),
        EXHAUSTED,
        # grpc's own words, before any handler runs: the transport limit is 1 MiB above
        # SAYIT_MAX_REQUEST_BYTES (room for the rest of the message).
        "Received message larger than max (106954764 vs. 105906176)",
    ),
    Case(
        "filename-too-long",
        "Transcribe",
        transcribe(b"RIFF", "a" * 300 + ".wav"),
        INVALID,
        "audio.filename is 304 characters; the limit is 255",
        field="audio.filename",
    ),
    # Bad configuration.
    Case(
        "unknown-language",
        "Transcribe",
        transcribe(b"x", language_code="xx"),
        INVALID,
        "unknown language code 'xx'",
        field="config.language_code",
    ),
    Case(
        "language-name-not-code",
        "Transcribe",
        transcribe(b"x", language_code="korean"),
        INVALID,
        "unknown language code 'korean'",
    ),
    Case(
        "language-with-nul",
        "Transcribe",
        transcribe(b"x", language_code="ko\0"),
        INVALID,
        "unknown language code",
    ),
    Case(
        "unknown-preset-enum",
        "Transcribe",
        transcribe(b"x", preset=99),
        INVALID,
        "unknown preset 99; use PRESET_ACCURATE or PRESET_FAST",
        field="config.preset",
    ),
    Case(
        "negative-task-enum",
        "Transcribe",
        transcribe(b"x", task=-1),
        INVALID,
        "unknown task -1",
        field="config.task",
    ),
    Case(
        "model-not-served",
        "Transcribe",
        transcribe(b"x", model="large-v9"),
        INVALID,
        "model 'large-v9' is not served here (served: base)",
        field="config.model",
    ),
    Case(
        "prompt-too-long-unicode",
        "Transcribe",
        transcribe(b"x", initial_prompt="가" * 1001),
        INVALID,
        "initial_prompt is 1001 characters; the limit is 1000",
        field="config.initial_prompt",
    ),
    Case(
        "hotwords-too-long",
        "Transcribe",
        transcribe(b"x", hotwords="w," * 501),
        INVALID,
        "hotwords is 1002 characters",
        field="config.hotwords",
    ),
    Case(
        "idempotency-key-too-long",
        "CreateJob",
        lambda: pb.CreateJobRequest(audio=audio_pb2.Audio(content=b"x"), idempotency_key="k" * 129),
        INVALID,
        "idempotency_key is 129 characters; the limit is 128",
        field="idempotency_key",
    ),
    # Bad ids, names and page tokens.
    Case(
        "job-name-not-hex",
        "GetJob",
        lambda: pb.GetJobRequest(name="jobs/xyz"),
        INVALID,
        "name must look like 'jobs/<32 lowercase hex characters>'",
        field="name",
    ),
    Case(
        "job-name-empty",
        "GetJob",
        lambda: pb.GetJobRequest(),
        INVALID,
        "name must look like",
        field="name",
    ),
    Case(
        "job-name-uppercase",
        "GetJob",
        lambda: pb.GetJobRequest(name="jobs/" + "A" * 32),
        INVALID,
        "name must look like",
    ),
    Case(
        "job-name-path-traversal",
        "CancelJob",
        lambda: pb.CancelJobRequest(name="jobs/../../etc/passwd"),
        INVALID,
        "got 'jobs/../../etc/passwd'",
    ),
    Case(
        "job-name-unicode",
        "WatchJob",
        lambda: pb.WatchJobRequest(name="jobs/잡🙂"),
        INVALID,
        "name must look like",
    ),
    Case(
        "job-name-huge",
        "GetJob",
        lambda: pb.GetJobRequest(name="jobs/" + "f" * 100_000),
        INVALID,
        "name must look like",
    ),
    Case(
        "job-unknown",
        "GetJob",
        lambda: pb.GetJobRequest(name=UNKNOWN_JOB),
        NOT_FOUND,
        f"job {UNKNOWN_JOB} not found",
    ),
    Case(
        "cancel-unknown-job",
        "CancelJob",
        lambda: pb.CancelJobRequest(name=UNKNOWN_JOB),
        NOT_FOUND,
        "not found",
    ),
    Case(
        "watch-unknown-job",
        "WatchJob",
        lambda: pb.WatchJobRequest(name=UNKNOWN_JOB),
        NOT_FOUND,
        "not found",
    ),
    Case(
        "watch-negative-sequence",
        "WatchJob",
        lambda: pb.WatchJobRequest(name=UNKNOWN_JOB, after_sequence=-1),
        INVALID,
        "after_sequence must be 0",
        field="after_sequence",
    ),
    Case(
        "page-token-garbage",
        "ListJobs",
        lambda: pb.ListJobsRequest(page_token="garbage!"),
        INVALID,
        "page_token is not a token returned by ListJobs",
        field="page_token",
    ),
    Case(
        "page-token-forged",
        "ListJobs",
        lambda: pb.ListJobsRequest(page_token="WzEsICIuLi8uLiJd"),
        INVALID,
        "pass next_page_token unchanged",
    ),
    Case(
        "page-token-huge",
        "ListJobs",
        lambda: pb.ListJobsRequest(page_token="A" * 10_000),
        INVALID,
        "page_token is not a token",
        field="page_token",
    ),
    Case(
        "page-size-negative",
        "ListJobs",
        lambda: pb.ListJobsRequest(page_size=-1),
        INVALID,
        "page_size must be between 0 and 100",
        field="page_size",
    ),
    Case(
        "page-size-too-big",
        "ListJobs",
        lambda: pb.ListJobsRequest(page_size=101),
        INVALID,
        "page_size must be between 0 and 100 (0 = 20); got 101",
    ),
    # Bytes that are not the method's message at all.
    Case(
        "request-with-invalid-utf8",
        "raw:GetJob",
        lambda: b"\x0a\x02\xff\xfe",
        INVALID,
        "the request is not a valid protobuf message for this method",
    ),
    Case(
        "request-wire-garbage",
        "raw:Transcribe",
        lambda: b"\xff\xff\xff\xff",
        INVALID,
        "not a valid protobuf message",
    ),
]

STREAMING = {"WatchJob", "TranscribeWithProgress"}


def call(speech_stub: pb_grpc.SpeechServiceStub, channel: grpc.Channel, case: Case) -> Any:
    request = case.request()
    if case.rpc.startswith("raw:"):
        method = f"/sayit.speech.v1.SpeechService/{case.rpc.removeprefix('raw:')}"
        raw = channel.unary_unary(method, request_serializer=None, response_deserializer=None)
        return raw(request, timeout=60)
    rpc = getattr(speech_stub, case.rpc)
    if case.rpc in STREAMING:
        return list(rpc(request, timeout=60))
    return rpc(request, timeout=300)


@pytest.fixture(scope="module")
def corpus_channel(mesh: Mesh) -> grpc.Channel:
    big = DEFAULT_MAX_BYTES + 4 * MIB
    return grpc.insecure_channel(
        mesh.gateway_addr,
        options=[("grpc.max_send_message_length", big), ("grpc.max_receive_message_length", big)],
    )


def test_the_corpus_is_large_enough() -> None:
    assert len(CASES) >= 40
    assert len({c.id for c in CASES}) == len(CASES)


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_input(case: Case, corpus_channel: grpc.Channel) -> None:
    stub = pb_grpc.SpeechServiceStub(corpus_channel)
    try:
        reply = call(stub, corpus_channel, case)
    except grpc.RpcError as error:
        assert error.code() == case.code, f"{error.code()}: {error.details()}"
        assert case.message in (error.details() or ""), error.details()
        if case.field:
            status = rpc_status.from_call(error)  # type: ignore[arg-type]
            assert status is not None
            bad_request = error_details_pb2.BadRequest()
            assert any(
                d.Unpack(bad_request) for d in status.details if d.Is(bad_request.DESCRIPTOR)
            )
            assert [v.field for v in bad_request.field_violations] == [case.field]
        return
    assert case.code == OK, f"expected {case.code.name}, the call succeeded: {reply}"
    assert case.check is not None
    case.check(reply)


def test_after_the_corpus_nothing_is_left_running(
    mesh: Mesh, speech: pb_grpc.SpeechServiceStub
) -> None:
    # The ten minutes of noise are queued: they finish (noise is not speech) like any job.
    deadline = time.monotonic() + 240
    while True:
        jobs = speech.ListJobs(pb.ListJobsRequest(page_size=100), timeout=10).jobs
        active = [j for j in jobs if j.state not in ENDED]
        if not active or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert not active, [(j.name, j.state) for j in active]
    noise = [j for j in jobs if j.filename == "noise.wav"]
    assert [j.state for j in noise] == [job_pb2.JOB_STATE_SUCCEEDED]
    words = noise[0].transcript.text.split()
    print(f"10 min of noise: {len(noise[0].transcript.segments)} segments, {len(words)} words")
    flagged = [s for s in noise[0].transcript.segments if s.flags]
    assert len(words) < 60 or len(flagged) == len(noise[0].transcript.segments)
    # No worker holds a job; every worker is idle.
    connection = mesh.redis.client()
    for queue in ("sayit-high", "sayit-default"):
        assert StartedJobRegistry(queue, connection=connection).get_job_ids() == []
    workers = Worker.all(connection=connection)
    assert workers and all(w.get_state() == "idle" for w in workers), [
        (w.name, w.get_state()) for w in workers
    ]
    # Every service still answers.
    for name, process in mesh.processes.items():
        assert process.alive(), name
        if process.addr:
            assert processes.health_status(process.addr) == health_pb2.HealthCheckResponse.SERVING
    reply = speech.Transcribe(
        pb.TranscribeRequest(
            audio=audio_pb2.Audio(content=sf_bytes(cheetah(), SAMPLE_RATE, "WAV", "PCM_16")),
            config=tpb.TranscriptionConfig(language_code="en"),
        ),
        timeout=120,
    )
    says_platforms(reply)
