"""A short job whose wait for a direct slot runs out goes to the high-priority queue and is
transcribed there: a mesh of one direct slot, a 3 s wait, and an assumed real-time factor so low
that waiting always looks worth it (the job holding the slot takes longer than the wait)."""

from __future__ import annotations

from collections.abc import Iterator

import grpc
import pytest

from bench import evalset, scoring
from sayit.common.v1 import job_pb2
from sayit.speech.v1 import speech_service_pb2_grpc as pb_grpc
from tests.support import audio
from tests.support.mesh import Mesh, running
from tests.support.speech import get, kinds, start_with_progress

pytestmark = pytest.mark.model

WAIT_SECONDS = 3.0


@pytest.fixture(scope="module")
def one_slot(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Mesh]:
    with running(
        tmp_path_factory.mktemp("direct-wait"),
        queue_transcribers=1,
        direct_slots=1,
        service_env={
            "scheduler": {
                "SAYIT_DIRECT_WAIT_SECONDS": str(WAIT_SECONDS),
                "SAYIT_QUEUE_DEFAULT_RTF": "0.001",
            }
        },
    ) as mesh:
        yield mesh


def test_a_wait_that_runs_out_goes_to_the_high_queue(one_slot: Mesh) -> None:
    speech = pb_grpc.SpeechServiceStub(grpc.insecure_channel(one_slot.gateway_addr))
    content, reference, seconds = audio.korean_long(25.0)
    assert seconds < 30
    holder, holder_events = start_with_progress(speech, content, "ko")
    assert get(speech, holder).routing == job_pb2.ROUTING_DIRECT

    clip = evalset.clip("en_jfk")
    waiter, waiter_events = start_with_progress(speech, clip.read(), "en")
    job = get(speech, waiter)
    assert (job.state, job.routing) == (job_pb2.JOB_STATE_QUEUED, job_pb2.ROUTING_DIRECT)

    events = list(waiter_events)
    assert kinds(events)[0] == "accepted" and kinds(events)[-1] == "completed"
    done = get(speech, waiter)
    assert (done.routing, done.queue) == (job_pb2.ROUTING_QUEUED, "sayit-high")
    assert scoring.score(clip.reference, done.transcript.text, "en").rate < 0.15
    # It left the line when its wait ran out, while the slot was still held.
    assert done.start_time.ToMilliseconds() - done.create_time.ToMilliseconds() >= (
        WAIT_SECONDS * 1000 - 50
    )
    assert kinds(list(holder_events))[-1] == "completed"
    held = get(speech, holder)
    assert done.start_time.ToMilliseconds() < held.end_time.ToMilliseconds()
    assert scoring.score(reference, held.transcript.text, "ko").rate < 0.3
