"""Long audio at scale, end to end: one file cut into chunks across several workers and merged,
and a chunked job cancelled. The mesh is this package's (conftest.py)."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from devsupport import audio, evalset, scoring
from devsupport.mesh import Mesh
from sayit.common.v1 import job_pb2
from sayit.speech.v1 import speech_service_pb2 as pb
from sayit.speech.v1 import speech_service_pb2_grpc as pb_grpc
from services.common.audio import SAMPLE_RATE, decode
from tests.support.long_audio_mesh import (
    check_history,
    chunk_starts,
    job_id,
    plan,
    rq_job,
    rq_status,
    wait_chunk_running,
    wait_planned,
    whole_file_text,
)
from tests.support.speech import create_job, get, kinds, watch

pytestmark = [pytest.mark.model, pytest.mark.redis]


def test_long_file_is_cut_at_pauses_spread_over_workers_and_merged(
    speech: pb_grpc.SpeechServiceStub, mesh: Mesh
) -> None:
    content, reference, seconds = audio.korean_long(185.0)
    assert seconds >= 180
    with ThreadPoolExecutor(1) as pool:
        whole = pool.submit(whole_file_text, mesh, content, "ko")
        job = create_job(speech, content, "ko")
        events = watch(speech, job.name)
        whole_text = whole.result()
    check_history(events)
    assert kinds(events)[-1] == "completed"
    final = get(speech, job.name)
    transcript = final.transcript
    assert final.state == job_pb2.JOB_STATE_SUCCEEDED and not transcript.from_cache

    # Cut into chunks near the target length, each cut in a pause: the 100 ms around it is
    # background noise, far below the speech level (devsupport.audio.TARGET_RMS).
    pieces = plan(mesh, job.name)
    assert len(pieces) >= 3 and final.progress.chunks_total == len(pieces)
    assert final.progress.chunks_done == len(pieces)
    assert sum(d for _, d in pieces) == pytest.approx(seconds, abs=0.5)
    samples = decode(content)
    for offset, _ in pieces[1:]:
        at = int(offset * SAMPLE_RATE)
        around = samples[at - SAMPLE_RATE // 20 : at + SAMPLE_RATE // 20]
        level = float(np.sqrt(np.mean(around**2)))
        assert level < audio.TARGET_RMS / 3, f"cut at {offset:.2f} s is in speech ({level:.4f})"

    # Several workers transcribed it.
    holders = {
        mesh.process_of(rq_job(mesh, job.name, i).worker_name or "") for i in range(len(pieces))
    }
    print(f"chunks {[(round(o, 1), round(d, 1)) for o, d in pieces]} on workers {sorted(holders)}")
    assert len(holders) >= 2

    # Segments streamed while chunks ran, on the whole file's clock; the transcript is the
    # segments in order, renumbered, with increasing timestamps.
    streamed = [e.segment for e in events if e.HasField("segment")]
    assert kinds(events).index("segment") < kinds(events).index("completed")
    assert max(s.start_seconds for s in streamed) > pieces[-1][0]
    segments = list(transcript.segments)
    assert [s.id for s in segments] == list(range(len(segments)))
    assert all(s.end_seconds >= s.start_seconds for s in segments)
    assert [s.start_seconds for s in segments] == sorted(s.start_seconds for s in segments)
    assert segments[-1].end_seconds <= seconds + 0.5
    assert sorted(s.text for s in streamed) == sorted(s.text for s in segments)
    assert transcript.audio_duration_seconds == pytest.approx(seconds, abs=0.5)
    assert transcript.language_code == "ko"

    # No words lost or doubled at the cuts: within a point of transcribing it whole.
    merged = scoring.score(reference, transcript.text, "ko").rate
    one_piece = scoring.score(reference, whole_text, "ko").rate
    print(f"CER merged {merged:.4f}, whole {one_piece:.4f}")
    assert merged <= one_piece + 0.01


def test_cancelling_a_chunked_job_stops_every_chunk(
    speech: pb_grpc.SpeechServiceStub, mesh: Mesh
) -> None:
    lj = evalset.clip("en_long_ljspeech_LJ001")
    job = create_job(speech, lj.read(), "en")
    pieces = wait_planned(mesh, job.name)
    assert len(pieces) >= 4  # more chunks than workers: some wait in the queue
    wait_chunk_running(mesh, job.name, 0)
    reply = speech.CancelJob(pb.CancelJobRequest(name=job.name), timeout=10)
    assert reply.job.state == job_pb2.JOB_STATE_CANCELLED
    deadline = time.monotonic() + 15
    statuses: list[str] = []
    while time.monotonic() < deadline:
        statuses = [rq_status(mesh, job.name, i) for i in range(len(pieces))]
        if all(s in ("stopped", "canceled", "finished") for s in statuses):
            break
        time.sleep(0.2)
    assert all(s in ("stopped", "canceled", "finished") for s in statuses), statuses
    assert "canceled" in statuses  # queued chunks never ran
    assert "stopped" in statuses  # running chunks were stopped
    never_ran = [i for i, s in enumerate(statuses) if s == "canceled"]
    assert all(not chunk_starts(mesh, job.name, i) for i in never_ran)
    assert kinds(watch(speech, job.name))[-1] == "cancelled"
    client = mesh.redis.client()
    assert not any(
        client.exists(f"sayit:job:{job_id(job.name)}:audio:{i}") for i in range(len(pieces))
    )
