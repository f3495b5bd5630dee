"""Audio that lies about its length, or states none, through the real gateway of a real mesh
(real transcribers with the model, real Redis).

A WebM of real speech whose header says 11 s over 300 s of audio is refused at the gateway with
INVALID_ARGUMENT naming both lengths (today it is charged 11 s, routed direct and decoded whole);
the honest file transcribes. A transcriber asked directly holds decoding to the length it is
told was admitted. A 10-hour FLAC with a zeroed sample count is refused within seconds, and a
WAV header claiming a 2 GHz rate before any decoding."""

from __future__ import annotations

import re
import time

import grpc
import numpy as np
import pytest

from devsupport import evalset, scoring
from devsupport.mesh import Mesh
from devsupport.processes import channel
from sayit.common.v1 import audio_pb2, transcription_pb2
from sayit.speech.v1 import speech_service_pb2 as pb
from sayit.speech.v1 import speech_service_pb2_grpc as pb_grpc
from sayit.transcriber.v1 import transcriber_service_pb2 as tpb
from sayit.transcriber.v1 import transcriber_service_pb2_grpc as tpb_grpc
from services.common.audio import SAMPLE_RATE, decode
from tests.support import lying_audio as lie
from tests.support.encode import silent_flac
from tests.support.speech import audio_request, rpc_error

pytestmark = pytest.mark.model

HELD_SECONDS = 300.0
INTERNALS = re.compile(r"127\.0\.0\.1|localhost|redis|Traceback|ipv4:", re.IGNORECASE)


def jfk() -> tuple[np.ndarray, str, float]:
    clip = evalset.clip("en_jfk")
    samples = decode(clip.read(), clip.path.name)
    return samples, clip.reference, len(samples) / SAMPLE_RATE


def transcribe(
    speech: pb_grpc.SpeechServiceStub, content: bytes, filename: str = "clip.webm"
) -> pb.TranscribeResponse:
    return speech.Transcribe(
        pb.TranscribeRequest(**audio_request(content, "en", filename)),  # type: ignore[arg-type]
        timeout=300,
    )


def assert_refused(error: grpc.RpcError, pattern: str) -> str:
    details = error.details() or ""
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT, f"{error.code()}: {details}"
    assert re.fullmatch(pattern, details), details
    assert not INTERNALS.search(details), details
    return details


def test_a_webm_that_understates_its_length_is_refused_at_the_gateway(
    speech: pb_grpc.SpeechServiceStub,
) -> None:
    samples, reference, seconds = jfk()
    repeats = int(np.ceil(HELD_SECONDS / seconds))
    lying = lie.webm_duration(lie.webm(np.tile(samples, repeats)), seconds)
    error = rpc_error(transcribe, speech, lying)
    assert_refused(
        error,
        r"the file's header declares 11 s but it holds more than 11\.5 s of audio; re-encode it "
        r"\(e\.g\. ffmpeg -i in -c:a flac out\.flac\) so its header is right",
    )
    # The same speech with an honest header is transcribed.
    honest = transcribe(speech, lie.webm(samples)).transcript
    assert honest.audio_duration_seconds == pytest.approx(seconds, abs=0.1)
    assert scoring.score(reference, honest.text, "en").rate < 0.2, honest.text


def test_a_transcriber_decodes_no_more_than_was_admitted(mesh: Mesh) -> None:
    samples, _, seconds = jfk()
    # No length in the file: only the admitted one (the gateway's measure) holds decoding.
    content = lie.webm(np.tile(samples, 6), live=True)
    transcriber = tpb_grpc.TranscriberServiceStub(
        channel(mesh.processes["transcriber-direct"].addr or "", mesh.tls_as("scheduler"))
    )
    request = tpb.TranscribeStreamRequest(
        audio=audio_pb2.Audio(content=content, filename="clip.webm"),
        config=transcription_pb2.TranscriptionConfig(language_code="en"),
        audio_duration_seconds=seconds,
    )
    error = rpc_error(transcriber.TranscribeStream, request, timeout=120)
    assert_refused(
        error,
        r"the audio was admitted as 11 s long but it holds more than 11\.5 s of audio; "
        r"re-encode it \(e\.g\. ffmpeg -i in -c:a flac out\.flac\) so its header is right",
    )


def test_a_ten_hour_file_without_a_declared_length_is_refused_fast(
    speech: pb_grpc.SpeechServiceStub,
) -> None:
    content = lie.flac_total_samples(silent_flac(10 * 3600), 0)  # ~0.9 MB, no sample count
    started = time.monotonic()
    error = rpc_error(transcribe, speech, content)
    elapsed = time.monotonic() - started
    assert_refused(error, r"audio is longer than the limit of 14400 s")
    print(f"10-hour length-less FLAC refused by the gateway in {elapsed:.2f} s")
    assert elapsed < 5.0


def test_a_wav_claiming_a_2_ghz_rate_is_refused_before_decoding(
    speech: pb_grpc.SpeechServiceStub,
) -> None:
    samples, _, _ = jfk()
    content = lie.wav_rate(lie.sf_blocks(samples, "WAV", "PCM_16"), 2_000_000_000)
    error = rpc_error(transcribe, speech, content, "clip.wav")
    assert_refused(
        error,
        r"could not decode audio 'clip\.wav': the header declares a sample rate of 2000000000 "
        r"Hz; supported rates are 1 kHz to 384 kHz",
    )
