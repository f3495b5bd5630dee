"""The bad-input corpus, through the real gateway of a real mesh with the default limits.

Every case asserts the exact status code and the words of a message a caller can act on; audio
in odd but valid shapes (8-bit, 24-bit, float, 8 kHz, 48 kHz, 6 channels, a video's sound track,
unicode prompts) must transcribe. Afterwards no job is left running, no worker is stuck and every
service still answers.

The corpus itself is in tests/support/bad_input_*.py.
"""

from __future__ import annotations

import time
from typing import Any

import grpc
import pytest
from google.rpc import error_details_pb2
from grpc_health.v1 import health_pb2
from grpc_status import rpc_status
from rq import Worker
from rq.registry import StartedJobRegistry

from devsupport import processes
from devsupport.mesh import Mesh
from sayit.common.v1 import audio_pb2, job_pb2
from sayit.common.v1 import transcription_pb2 as tpb
from sayit.speech.v1 import speech_service_pb2 as pb
from sayit.speech.v1 import speech_service_pb2_grpc as pb_grpc
from services.common.audio import SAMPLE_RATE
from tests.support.bad_input_audio_cases import AUDIO_CASES
from tests.support.bad_input_case import OK, Case, says_platforms
from tests.support.bad_input_material import MIB, cheetah
from tests.support.bad_input_request_cases import DEFAULT_MAX_BYTES, REQUEST_CASES
from tests.support.encode import sf_bytes

pytestmark = pytest.mark.model

ENDED = {job_pb2.JOB_STATE_SUCCEEDED, job_pb2.JOB_STATE_FAILED, job_pb2.JOB_STATE_CANCELLED}

CASES = [*AUDIO_CASES, *REQUEST_CASES]

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
    return mesh.gateway_channel(
        **{"grpc.max_send_message_length": big, "grpc.max_receive_message_length": big}
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
            status = processes.health_status(process.addr, tls=process.tls)
            assert status == health_pb2.HealthCheckResponse.SERVING, name
    reply = speech.Transcribe(
        pb.TranscribeRequest(
            audio=audio_pb2.Audio(content=sf_bytes(cheetah(), SAMPLE_RATE, "WAV", "PCM_16")),
            config=tpb.TranscriptionConfig(language_code="en"),
        ),
        timeout=120,
    )
    says_platforms(reply)
