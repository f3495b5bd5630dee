"""A mesh whose queued-audio budget fills up: new queued work is refused with RESOURCE_EXHAUSTED
and RetryInfo before its audio is stored, the jobs already admitted are intact and complete with
their real transcripts, and once they have, their audio is no longer counted (no leak) and the
refused call goes through."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from devsupport import evalset, scoring
from devsupport.mesh import Mesh, running
from sayit.speech.v1 import speech_service_pb2 as pb
from sayit.speech.v1 import speech_service_pb2_grpc as pb_grpc
from services.jobs.schema import Keys
from tests.support.speech import audio_request, create_job, kinds, rpc_error, watch

pytestmark = pytest.mark.model

# Room for two of the three clips below (48-51 kB each, kept as sent: each is one chunk).
BUDGET = 120_000
CLIPS = ("en_pv_cheetah_test", "ko_deeply_sub100101a00068", "ko_deeply_sub100102a00085")


@pytest.fixture(scope="module")
def mesh(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Mesh]:
    with running(
        Path(tmp_path_factory.mktemp("budget")),
        queue_transcribers=1,
        direct_slots=1,
        extra_env={"SAYIT_STORED_AUDIO_BUDGET_BYTES": str(BUDGET)},
    ) as mesh:
        yield mesh


@pytest.fixture(scope="module")
def speech(mesh: Mesh) -> pb_grpc.SpeechServiceStub:
    return pb_grpc.SpeechServiceStub(mesh.gateway_channel())


def test_a_full_audio_budget_refuses_new_jobs_and_the_admitted_ones_complete(
    speech: pb_grpc.SpeechServiceStub, mesh: Mesh
) -> None:
    clips = [evalset.clip(name) for name in CLIPS]
    contents = [clip.read() for clip in clips]
    assert sum(map(len, contents[:2])) <= BUDGET < sum(map(len, contents))
    first = [create_job(speech, contents[i], clips[i].language) for i in range(2)]

    error = rpc_error(
        speech.CreateJob,
        pb.CreateJobRequest(**audio_request(contents[2], clips[2].language)),  # type: ignore[arg-type]
        timeout=30,
    )
    assert error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    details = error.details()
    held = sum(map(len, contents[:2])) / 1e3
    assert details.startswith(
        f"the queue's audio storage is full ({held:.0f} kB of 120 kB held for jobs not yet "
        f"transcribed; this audio needs {len(contents[2]) / 1e3:.0f} kB)"
    ), details
    assert details.endswith("retry in 30 s")
    assert str(mesh.redis.port) not in details and "127.0.0.1" not in details
    status = rpc_status.from_call(error)
    assert status is not None
    retry = error_details_pb2.RetryInfo()
    assert any(detail.Unpack(retry) for detail in status.details)
    assert retry.retry_delay.seconds == 30

    # The admitted jobs were not touched: they run to the end with their real transcripts.
    for job, clip in zip(first, clips[:2], strict=True):
        events = watch(speech, job.name, timeout=300)
        assert kinds(events)[0] == "accepted" and kinds(events)[-1] == "completed"
        text = events[-1].completed.transcript.text
        assert scoring.score(clip.reference, text, clip.language).rate < 0.3, text

    # Their audio is gone from Redis and from the count: the refused job now goes through.
    client = mesh.redis.client()
    audio_keys = client.smembers(Keys().stored_audio())
    assert sum(int(client.strlen(key)) for key in audio_keys) == 0
    retried = create_job(speech, contents[2], clips[2].language)
    events = watch(speech, retried.name, timeout=300)
    assert kinds(events)[-1] == "completed"
    assert scoring.score(clips[2].reference, events[-1].completed.transcript.text, "ko").rate < 0.3
