"""Short jobs beyond the direct slots: the first is sent ahead to the transcriber and waits there
for the slot (SAYIT_DIRECT_AHEAD, default one per slot); the next waits in the scheduler, and when
its wait runs out goes to the high-priority queue and is transcribed there. A mesh of one direct
slot, a 2 s wait, and an assumed real-time factor so low that waiting always looks worth it (the
jobs ahead of it take longer than the wait)."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from devsupport import audio, evalset, scoring
from devsupport.mesh import Mesh, running
from devsupport.processes import channel
from sayit.common.v1 import job_pb2
from sayit.speech.v1 import speech_service_pb2_grpc as pb_grpc
from sayit.transcriber.v1 import transcriber_service_pb2 as tpb
from sayit.transcriber.v1 import transcriber_service_pb2_grpc as tpb_grpc
from tests.support.speech import get, kinds, start_with_progress

pytestmark = pytest.mark.model

# Short enough that the holder (28 s of Korean, some 5 s to transcribe on a fast idle machine)
# still holds the slot when the waiter's wait runs out; with 3 s the holder sometimes finished
# first and the waiter went direct.
WAIT_SECONDS = 2.0


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


def test_one_job_waits_at_the_transcriber_and_a_wait_that_runs_out_goes_to_the_high_queue(
    one_slot: Mesh,
) -> None:
    speech = pb_grpc.SpeechServiceStub(one_slot.gateway_channel())
    transcriber = tpb_grpc.TranscriberServiceStub(
        channel(one_slot.processes["transcriber-direct"].addr or "", one_slot.tls_as("scheduler"))
    )
    content, reference, seconds = audio.korean_long(28.0)
    assert seconds < 30
    holder, holder_events = start_with_progress(speech, content, "ko")
    assert get(speech, holder).routing == job_pb2.ROUTING_DIRECT

    # Sent ahead: running as far as the scheduler knows, waiting at the transcriber for its slot.
    ahead, ahead_events = start_with_progress(speech, content, "ko")
    job = get(speech, ahead)
    assert (job.state, job.routing) == (job_pb2.JOB_STATE_RUNNING, job_pb2.ROUTING_DIRECT)
    deadline = time.monotonic() + 10
    info = transcriber.GetInfo(tpb.GetInfoRequest(), timeout=10)
    while info.calls_waiting == 0 and time.monotonic() < deadline:
        time.sleep(0.05)  # the call is on its way, its audio being decoded
        info = transcriber.GetInfo(tpb.GetInfoRequest(), timeout=10)
    assert (info.slots_busy, info.calls_waiting) == (1, 1)

    clip = evalset.clip("en_jfk")
    waiter, waiter_events = start_with_progress(speech, clip.read(), "en")
    job = get(speech, waiter)
    assert (job.state, job.routing) == (job_pb2.JOB_STATE_QUEUED, job_pb2.ROUTING_DIRECT)

    events = list(waiter_events)
    assert kinds(events)[0] == "accepted" and kinds(events)[-1] == "completed"
    done = get(speech, waiter)
    assert done.routing == job_pb2.ROUTING_QUEUED  # overflowed to the high-priority queue
    assert one_slot.queue_of(waiter) == "sayit-high"
    assert scoring.score(clip.reference, done.transcript.text, "en").rate < 0.15
    # It left the line when its wait ran out, while the jobs ahead still held the transcriber.
    assert done.start_time.ToMilliseconds() - done.create_time.ToMilliseconds() >= (
        WAIT_SECONDS * 1000 - 50
    )
    for name, job_events in ((holder, holder_events), (ahead, ahead_events)):
        assert kinds(list(job_events))[-1] == "completed"
        held = get(speech, name)
        assert held.routing == job_pb2.ROUTING_DIRECT
        assert scoring.score(reference, held.transcript.text, "ko").rate < 0.3
    assert done.start_time.ToMilliseconds() < get(speech, ahead).end_time.ToMilliseconds()
    # The job sent ahead started on the slot only when the holder's transcription ended.
    assert (
        get(speech, ahead).end_time.ToMilliseconds() > get(speech, holder).end_time.ToMilliseconds()
    )
