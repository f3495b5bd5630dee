"""Audio that crashed the engine, refused at once the next time, through the real mesh: the
direct transcriber (the real model) is SIGKILLed while it transcribes a clip, as the OOM killer
would; restarted, it is never sent that clip again."""

from __future__ import annotations

import time
from collections.abc import Iterator

import grpc
import pytest

from devsupport import audio
from devsupport.mesh import Mesh, running
from devsupport.processes import channel
from sayit.common.v1 import job_pb2
from sayit.speech.v1 import speech_service_pb2 as pb
from sayit.speech.v1 import speech_service_pb2_grpc as pb_grpc
from sayit.transcriber.v1 import transcriber_service_pb2 as tpb
from sayit.transcriber.v1 import transcriber_service_pb2_grpc as tpb_grpc
from services.scheduler.poison import CRASHED_MESSAGE
from tests.support.speech import audio_request, rpc_error, start_with_progress, wait_state

pytestmark = pytest.mark.model

ENDED = {job_pb2.JOB_STATE_SUCCEEDED, job_pb2.JOB_STATE_FAILED, job_pb2.JOB_STATE_CANCELLED}


@pytest.fixture(scope="module")
def mesh(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Mesh]:
    with running(tmp_path_factory.mktemp("poison"), queue_transcribers=1, direct_slots=1) as mesh:
        yield mesh


def test_a_clip_that_killed_the_transcriber_is_refused_at_once_and_never_sent_again(
    mesh: Mesh,
) -> None:
    speech = pb_grpc.SpeechServiceStub(mesh.gateway_channel())
    content, _, seconds = audio.korean_long(20.0)
    assert seconds < 30  # direct
    name, events = start_with_progress(speech, content, "ko")
    for event in events:
        if event.HasField("progress"):
            break
    mesh.processes["transcriber-direct"].kill()  # SIGKILL mid-call, as the OOM killer does
    crashed = wait_state(speech, name, ENDED, timeout=60)
    assert crashed.state == job_pb2.JOB_STATE_FAILED
    assert crashed.error.code == grpc.StatusCode.INTERNAL.value[0]
    assert crashed.error.message == CRASHED_MESSAGE
    # Not overflowed to the queue, where it would have taken down a queue transcriber too.
    assert crashed.routing == job_pb2.ROUTING_DIRECT

    mesh.restart("transcriber-direct")
    started = time.monotonic()
    error = rpc_error(
        speech.Transcribe,
        pb.TranscribeRequest(**audio_request(content, "ko")),  # type: ignore[arg-type]
        timeout=60,
    )
    refused_in = time.monotonic() - started
    assert error.code() == grpc.StatusCode.INTERNAL
    assert (error.details() or "").startswith(CRASHED_MESSAGE + " (the same audio")
    assert refused_in < 2.0, refused_in
    # The restarted transcriber was never sent it.
    transcriber = tpb_grpc.TranscriberServiceStub(
        channel(mesh.processes["transcriber-direct"].addr or "", mesh.tls_as("scheduler"))
    )
    info = transcriber.GetInfo(tpb.GetInfoRequest(), timeout=10)
    assert (info.slots_busy, info.calls_completed_total, info.calls_cancelled_total) == (0, 0, 0)
    print(f"\nrefused in {refused_in * 1000:.0f} ms")
