"""Long audio at scale, end to end: repeated submissions served from the result cache, shared
while in flight, or named by an idempotency key. The mesh is this package's (conftest.py)."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import grpc
import pytest

from devsupport import audio, evalset
from devsupport.mesh import Mesh
from devsupport.processes import channel
from sayit.common.v1 import job_pb2
from sayit.scheduler.v1 import scheduler_service_pb2 as spb
from sayit.scheduler.v1 import scheduler_service_pb2_grpc as spb_grpc
from sayit.speech.v1 import speech_service_pb2 as pb
from sayit.speech.v1 import speech_service_pb2_grpc as pb_grpc
from services.common.audio import probe
from tests.support.long_audio_mesh import ENDED, transcriber_calls
from tests.support.speech import audio_request, create_job, get, kinds, rpc_error, wait_state, watch

pytestmark = [pytest.mark.model, pytest.mark.redis]


def test_repeated_audio_is_served_from_the_cache(
    speech: pb_grpc.SpeechServiceStub, mesh: Mesh
) -> None:
    clip = evalset.clip("ko_deeply_sub100111a00054")
    first = speech.Transcribe(pb.TranscribeRequest(**audio_request(clip.read(), "ko")), timeout=120)
    assert not first.transcript.from_cache
    calls = transcriber_calls(mesh)
    # The same audio and effective config ("KO" is "ko"): no transcriber is called again.
    again = speech.Transcribe(pb.TranscribeRequest(**audio_request(clip.read(), "KO")), timeout=120)
    assert again.transcript.from_cache and again.transcript.text == first.transcript.text
    assert again.job_name != first.job_name
    assert get(speech, again.job_name).state == job_pb2.JOB_STATE_SUCCEEDED
    assert kinds(watch(speech, again.job_name)) == ["accepted", "completed"]
    assert transcriber_calls(mesh) == calls
    # Another config is another result.
    request = pb.TranscribeRequest(**audio_request(clip.read(), "ko"))
    request.config.word_timestamps = True
    other = speech.Transcribe(request, timeout=120)
    assert not other.transcript.from_cache and other.transcript.segments[0].words
    assert transcriber_calls(mesh) == calls + 1
    # Another tenant never gets this tenant's result (the scheduler names tenants; only the
    # gateway may, so the test calls as the gateway).
    scheduler = spb_grpc.SchedulerServiceStub(channel(mesh.scheduler_addr, mesh.tls_as("gateway")))
    reply = scheduler.SubmitJob(
        spb.SubmitJobRequest(
            tenant="other",
            wait_if_short=True,
            audio_duration_seconds=probe(clip.read()).duration_seconds,
            **audio_request(clip.read(), "ko"),
        ),
        timeout=120,
    )
    assert reply.job.state == job_pb2.JOB_STATE_SUCCEEDED and not reply.job.transcript.from_cache


def test_identical_submissions_share_one_running_job(
    speech: pb_grpc.SpeechServiceStub, mesh: Mesh
) -> None:
    content, _, _ = audio.korean_long(40.0, start=11)
    calls = transcriber_calls(mesh)
    with ThreadPoolExecutor(3) as pool:
        jobs = list(pool.map(lambda _: create_job(speech, content, "ko"), range(3)))
    assert len({j.name for j in jobs}) == 1
    final = wait_state(speech, jobs[0].name, ENDED, 120)
    assert final.state == job_pb2.JOB_STATE_SUCCEEDED
    assert transcriber_calls(mesh) == calls + 1
    # Once it has finished, the same audio comes from the cache as a job of its own.
    later = create_job(speech, content, "ko")
    assert later.name != final.name and later.transcript.from_cache
    # Another tenant gets a job of its own (as the gateway, who alone names tenants).
    scheduler = spb_grpc.SchedulerServiceStub(channel(mesh.scheduler_addr, mesh.tls_as("gateway")))
    reply = scheduler.SubmitJob(
        spb.SubmitJobRequest(
            tenant="other",
            routing_policy=spb.ROUTING_POLICY_QUEUE,
            audio_duration_seconds=probe(content).duration_seconds,
            **audio_request(content, "ko"),
        ),
        timeout=30,
    )
    assert reply.job.name not in (final.name, later.name)


def test_the_same_idempotency_key_returns_the_same_job(
    speech: pb_grpc.SpeechServiceStub, mesh: Mesh
) -> None:
    clip = evalset.clip("en_fleurs_000")

    def create(content: bytes, key: str) -> job_pb2.TranscriptionJob:
        request = pb.CreateJobRequest(idempotency_key=key, **audio_request(content, "en"))  # type: ignore[arg-type]
        return speech.CreateJob(request, timeout=30).job

    calls = transcriber_calls(mesh)
    first = create(clip.read(), "order-17")
    assert create(clip.read(), "order-17").name == first.name  # while it runs
    assert wait_state(speech, first.name, ENDED, 120).state == job_pb2.JOB_STATE_SUCCEEDED
    assert create(clip.read(), "order-17").name == first.name  # and once it has ended
    assert transcriber_calls(mesh) == calls + 1
    error = rpc_error(
        speech.CreateJob,
        pb.CreateJobRequest(
            idempotency_key="order-17", **audio_request(evalset.clip("en_jfk").read(), "en")
        ),  # type: ignore[arg-type]
        timeout=30,
    )
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT and "idempotency_key" in error.details()
    assert create(clip.read(), "order-18").name != first.name
