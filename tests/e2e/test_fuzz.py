"""Generated requests against the live gateway of the edge mesh (API keys, mutual TLS): random
field values, random and damaged audio, random keys and raw bytes. Whatever comes in, the
answer is a status a caller can act on, never INTERNAL or UNKNOWN, and no service falls over.
No message a caller reads (a status, a job's error, a failed event) names an internal address,
unless the caller sent that text itself.

`make test` runs a bounded number of examples; `make fuzz` runs SAYIT_FUZZ_EXAMPLES (10 000).
"""

from __future__ import annotations

import functools
import os
import time
from typing import Any

import grpc
import numpy as np
import pytest
from grpc_health.v1 import health_pb2
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from devsupport import evalset
from devsupport.processes import health_status
from devsupport.settings import FuzzSettings
from sayit.common.v1 import audio_pb2, job_pb2, streaming_pb2
from sayit.common.v1 import transcription_pb2 as tpb
from sayit.speech.v1 import speech_service_pb2 as pb
from sayit.speech.v1 import speech_service_pb2_grpc as pb_grpc
from services.common.audio import decode
from tests.support.addresses import leaks
from tests.support.edge import EdgeMesh
from tests.support.encode import av_bytes, sf_bytes

pytestmark = pytest.mark.model

EXAMPLES = FuzzSettings.from_env(os.environ).fuzz_examples
NEVER = {grpc.StatusCode.INTERNAL, grpc.StatusCode.UNKNOWN, grpc.StatusCode.DATA_LOSS}
SERVICE = "/sayit.speech.v1.SpeechService/"
INT32 = st.integers(-(2**31), 2**31 - 1)
INT64 = st.integers(-(2**63), 2**63 - 1)


@functools.cache
def seeds() -> list[bytes]:
    """Small valid files to damage: one second of speech in several formats."""
    speech = decode(evalset.clip("en_pv_cheetah_test").read())[16_000:32_000]
    return [
        sf_bytes(speech, 16_000, "WAV", "PCM_16"),
        sf_bytes(speech, 16_000, "FLAC", "PCM_16"),
        sf_bytes(speech, 16_000, "OGG", "VORBIS"),
        sf_bytes(speech, 16_000, "MP3", "MPEG_LAYER_III"),
        av_bytes(np.repeat(speech[:, None], 2, axis=1), 16_000, "mp4", "aac"),
    ]


@st.composite
def damaged_audio(draw: st.DrawFn) -> bytes:
    content = bytearray(seeds()[draw(st.integers(0, len(seeds()) - 1))])
    for _ in range(draw(st.integers(0, 8))):
        position = draw(st.integers(0, len(content) - 1))
        content[position] = draw(st.integers(0, 255))
    cut = draw(st.integers(1, len(content)))
    return bytes(content[: cut if draw(st.booleans()) else len(content)])


audio_bytes = st.one_of(
    st.binary(max_size=4096),
    damaged_audio(),
    st.sampled_from(range(5)).map(lambda i: seeds()[i]),
)
strings = st.text(max_size=64)
configs = st.builds(
    tpb.TranscriptionConfig,
    language_code=st.one_of(st.sampled_from(["", "ko", "en", "auto", "KO-kr", "xx"]), strings),
    preset=st.one_of(st.sampled_from([0, 1, 2]), INT32),
    model=st.one_of(st.sampled_from(["", "base", "small"]), strings),
    task=st.one_of(st.sampled_from([0, 1, 2]), INT32),
    word_timestamps=st.booleans(),
    vad_filter=st.booleans(),
    initial_prompt=st.text(max_size=1100),
    hotwords=st.text(max_size=1100),
)
audios = st.builds(audio_pb2.Audio, content=audio_bytes, filename=st.text(max_size=300))
names = st.one_of(
    strings,
    st.text(alphabet="0123456789abcdefABCDEF", min_size=30, max_size=34).map("jobs/".__add__),
    st.just("jobs/" + "0" * 32),
)
REQUESTS = {
    "Transcribe": st.builds(pb.TranscribeRequest, audio=audios, config=configs),
    "TranscribeWithProgress": st.builds(
        pb.TranscribeWithProgressRequest, audio=audios, config=configs
    ),
    "CreateJob": st.builds(
        pb.CreateJobRequest, audio=audios, config=configs, idempotency_key=st.text(max_size=200)
    ),
    "GetJob": st.builds(pb.GetJobRequest, name=names),
    "WatchJob": st.builds(pb.WatchJobRequest, name=names, after_sequence=INT64),
    "CancelJob": st.builds(pb.CancelJobRequest, name=names),
    "ListJobs": st.builds(
        pb.ListJobsRequest,
        page_size=INT32,
        page_token=st.text(max_size=600),
        view=st.one_of(st.sampled_from([0, 1, 2]), INT32),
    ),
}
STREAMING = {"TranscribeWithProgress", "WatchJob"}


FLOATS = st.floats(allow_nan=True, allow_infinity=True, width=32)
streaming_configs = st.builds(
    streaming_pb2.StreamingRecognitionConfig,
    config=configs,
    encoding=st.one_of(st.sampled_from([0, 1, 2]), INT32),
    sample_rate_hertz=st.one_of(st.sampled_from([16_000, 8_000, 48_000, 44_100]), INT32),
    audio_channel_count=st.one_of(st.sampled_from([0, 1, 2]), INT32),
    interim_results=st.booleans(),
    endpointing=st.builds(
        streaming_pb2.EndpointingConfig,
        silence_seconds=st.one_of(st.just(0.0), st.floats(allow_nan=True)),
        max_utterance_seconds=st.one_of(st.just(0.0), st.floats(allow_nan=True)),
        speech_threshold=st.one_of(st.just(0.0), FLOATS),
    ),
)


# Valid configs, so that sessions get past validation and their audio is what is generated.
valid_streaming_configs = st.builds(
    streaming_pb2.StreamingRecognitionConfig,
    config=st.builds(
        tpb.TranscriptionConfig,
        language_code=st.sampled_from(["", "ko", "en"]),
        preset=st.sampled_from([0, 1, 2]),
        word_timestamps=st.booleans(),
    ),
    encoding=st.sampled_from([1, 2]),
    sample_rate_hertz=st.sampled_from([8_000, 16_000, 44_100, 48_000]),
    audio_channel_count=st.sampled_from([0, 1, 2]),
    interim_results=st.booleans(),
)


@functools.cache
def speech_pcm() -> bytes:
    """Two seconds of speech as 16 kHz LINEAR16."""
    speech = decode(evalset.clip("en_pv_cheetah_test").read())[:32_000]
    return (np.clip(speech, -1, 1) * 32767).astype("<i2").tobytes()


live_audio = st.one_of(
    st.binary(max_size=8192),
    st.lists(FLOATS, max_size=2048).map(lambda xs: np.asarray(xs, "<f4").tobytes()),
    st.integers(0, 9).map(lambda n: speech_pcm()[n * 3200 : (n + 4) * 3200 + 1]),
)
live_messages = st.lists(
    st.one_of(
        st.builds(pb.StreamingRecognizeRequest, streaming_config=streaming_configs),
        st.builds(pb.StreamingRecognizeRequest, audio_content=live_audio),
    ),
    max_size=8,
)


def authorization(edge: EdgeMesh) -> st.SearchStrategy[list[tuple[str, str]]]:
    """Mostly a key with every right (so requests reach validation), sometimes a reader's key,
    none, or random text."""
    return st.integers(0, 9).flatmap(
        lambda n: (
            st.just(edge.auth("acme"))
            if n < 7
            else st.just(edge.auth("acme-reader"))
            if n == 7
            else st.just([])
            if n == 8
            else st.text(
                alphabet=st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=80
            ).map(lambda value: [("authorization", value)])
        )
    )


def assert_no_address(method: str, message: str, sent: str) -> None:
    """`message` names no internal address (text the caller sent itself may come back)."""
    found = [leak for leak in leaks(message) if leak not in sent]
    assert not found, f"{method}: {found} in {message!r}"


def job_errors(reply: Any) -> list[str]:
    """The error messages of the jobs in a unary reply."""
    jobs = list(getattr(reply, "jobs", ()))
    if hasattr(reply, "job"):
        jobs.append(reply.job)
    return [job.error.message for job in jobs if job.HasField("error")]


@pytest.fixture(scope="module")
def gateway(edge: EdgeMesh) -> grpc.Channel:
    return edge.channel()


def generated_calls(edge: EdgeMesh, gateway: grpc.Channel, examples: int) -> dict[str, int]:
    """Send `examples` generated requests; every failure must carry a message without an
    internal address and never be INTERNAL or UNKNOWN. Returns the count of each code."""
    stub = pb_grpc.SpeechServiceStub(gateway)
    codes: dict[str, int] = {}

    @settings(
        max_examples=examples,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(data=st.data())
    def one_call(data: st.DataObject) -> None:
        metadata = data.draw(authorization(edge), label="metadata")
        if data.draw(st.integers(0, 9), label="raw?") == 0:
            method = data.draw(st.sampled_from(sorted(REQUESTS)), label="method")
            payload = data.draw(st.binary(max_size=512), label="raw bytes")
            call: Any = gateway.unary_unary(SERVICE + method)
            if method in STREAMING:
                call = gateway.unary_stream(SERVICE + method)
            request: Any = payload
        else:
            method = data.draw(st.sampled_from(sorted(REQUESTS)), label="method")
            request = data.draw(REQUESTS[method], label="request")
            call = getattr(stub, method)
        sent = f"{request!r} {metadata!r}"
        try:
            reply = call(request, metadata=metadata, timeout=120)
            if method in STREAMING:
                for response in reply:
                    assert_no_address(method, response.event.failed.error.message, sent)
            else:
                for message in job_errors(reply):
                    assert_no_address(method, message, sent)
            code = grpc.StatusCode.OK
        except grpc.RpcError as error:
            code = error.code()
            assert code not in NEVER, f"{method}: {code.name}: {error.details()}"
            assert error.details(), f"{method}: {code.name} without a message"
            assert_no_address(method, error.details() or "", sent)
        codes[code.name] = codes.get(code.name, 0) + 1

    one_call()
    assert sum(codes.values()) >= examples
    return codes


def generated_sessions(edge: EdgeMesh, gateway: grpc.Channel, examples: int) -> dict[str, int]:
    """Send `examples` generated live sessions (StreamingRecognize: random configs in any place,
    random, damaged or non-finite audio, odd lengths); the same rules as generated_calls, and a
    session that got a job ends it: none is left running."""
    stub = pb_grpc.SpeechServiceStub(gateway)
    codes: dict[str, int] = {}
    jobs: list[str] = []

    @settings(
        max_examples=examples,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(data=st.data())
    def one_session(data: st.DataObject) -> None:
        metadata = data.draw(authorization(edge), label="metadata")
        first = data.draw(
            st.builds(
                pb.StreamingRecognizeRequest,
                streaming_config=st.one_of(valid_streaming_configs, streaming_configs),
            ),
            label="first",
        )
        messages = [first, *data.draw(live_messages, label="messages")]
        sent = f"{messages!r} {metadata!r}"
        try:
            for response in stub.StreamingRecognize(iter(messages), metadata=metadata, timeout=60):
                if response.job_name and response.job_name not in jobs:
                    jobs.append(response.job_name)
            code = grpc.StatusCode.OK
        except grpc.RpcError as error:
            code = error.code()
            assert code not in NEVER, f"StreamingRecognize: {code.name}: {error.details()}"
            assert error.details(), f"StreamingRecognize: {code.name} without a message"
            assert_no_address("StreamingRecognize", error.details() or "", sent)
        codes[code.name] = codes.get(code.name, 0) + 1

    one_session()
    for name in jobs:
        job = stub.GetJob(pb.GetJobRequest(name=name), **acme(edge)).job
        deadline = time.monotonic() + 30
        while job.state in (job_pb2.JOB_STATE_QUEUED, job_pb2.JOB_STATE_RUNNING):
            assert time.monotonic() < deadline, f"{name} still {job_pb2.JobState.Name(job.state)}"
            time.sleep(0.2)
            job = stub.GetJob(pb.GetJobRequest(name=name), **acme(edge)).job
        if job.HasField("error"):
            assert_no_address("StreamingRecognize", job.error.message, "")
    return codes


def assert_all_serving(edge: EdgeMesh) -> None:
    for name, process in edge.mesh.processes.items():
        assert process.alive(), f"{name} died:\n{process.log_tail()}"
        if process.addr:
            status = health_status(process.addr, tls=edge.certs.client_tls("operator"))
            assert status == health_pb2.HealthCheckResponse.SERVING, name


def test_generated_requests_never_get_internal_or_unknown(
    edge: EdgeMesh, gateway: grpc.Channel
) -> None:
    codes = generated_calls(edge, gateway, EXAMPLES)
    print(f"{EXAMPLES} generated requests: {dict(sorted(codes.items()))}")
    assert_all_serving(edge)


def test_generated_live_sessions_never_get_internal_or_unknown(
    edge: EdgeMesh, gateway: grpc.Channel
) -> None:
    codes = generated_sessions(edge, gateway, EXAMPLES)
    print(f"{EXAMPLES} generated live sessions: {dict(sorted(codes.items()))}")
    # Most are refused at validation; some must get through to a session and end OK.
    assert codes.get("INVALID_ARGUMENT", 0) > 0 and codes.get("OK", 0) > 0, codes
    assert_all_serving(edge)


def test_with_the_scheduler_down_no_message_names_an_address(
    edge: EdgeMesh, gateway: grpc.Channel
) -> None:
    """Every call that needs the scheduler fails UNAVAILABLE, and what gRPC said about the lost
    connection (with the scheduler's address) reaches no caller."""
    scheduler = edge.mesh.processes["scheduler"]
    scheduler.kill()
    try:
        codes = generated_calls(edge, gateway, EXAMPLES)
    finally:
        scheduler.start()
        scheduler.wait_serving()
        wait_until_reachable(edge, gateway)
    print(f"{EXAMPLES} generated requests, scheduler down: {dict(sorted(codes.items()))}")
    assert_all_serving(edge)


def test_with_the_scheduler_down_valid_calls_name_no_address(
    edge: EdgeMesh, gateway: grpc.Channel
) -> None:
    """The generated requests are mostly invalid (refused before the scheduler is asked): these
    valid ones are sure to need it."""
    stub = pb_grpc.SpeechServiceStub(gateway)
    valid = {
        "GetJob": lambda: stub.GetJob(pb.GetJobRequest(name=NO_JOB), **acme(edge)),
        "ListJobs": lambda: stub.ListJobs(pb.ListJobsRequest(), **acme(edge)),
        "CancelJob": lambda: stub.CancelJob(pb.CancelJobRequest(name=NO_JOB), **acme(edge)),
        "WatchJob": lambda: list(stub.WatchJob(pb.WatchJobRequest(name=NO_JOB), **acme(edge))),
        "Transcribe": lambda: stub.Transcribe(
            pb.TranscribeRequest(audio=audio_pb2.Audio(content=seeds()[0])), **acme(edge)
        ),
    }
    scheduler = edge.mesh.processes["scheduler"]
    scheduler.kill()
    try:
        for method, call in valid.items():
            with pytest.raises(grpc.RpcError) as raised:
                call()
            error = raised.value
            assert error.code() == grpc.StatusCode.UNAVAILABLE, (method, error.details())
            assert_no_address(method, error.details() or "", "")
            assert (error.details() or "").startswith(
                "the transcription service is unavailable; retry in a few seconds (request id "
            ), error.details()
    finally:
        scheduler.start()
        scheduler.wait_serving()
        wait_until_reachable(edge, gateway)


NO_JOB = "jobs/" + "0" * 32


def acme(edge: EdgeMesh) -> dict[str, Any]:
    return {"metadata": edge.auth("acme"), "timeout": 30}


def wait_until_reachable(edge: EdgeMesh, gateway: grpc.Channel) -> None:
    """Until the gateway reaches the scheduler again (its channel reconnects with backoff)."""
    stub = pb_grpc.SpeechServiceStub(gateway)
    deadline = time.monotonic() + 30
    while True:
        try:
            stub.GetJob(pb.GetJobRequest(name=NO_JOB), metadata=edge.auth("acme"), timeout=5)
        except grpc.RpcError as error:
            if error.code() == grpc.StatusCode.NOT_FOUND:
                return
            assert time.monotonic() < deadline, error.details()
            time.sleep(0.2)
