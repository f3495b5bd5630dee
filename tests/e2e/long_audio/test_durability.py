"""Long audio at scale, end to end: a Redis restart (AOF) that loses nothing. The mesh is this
package's (conftest.py)."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

import grpc
import pytest

from devsupport import audio, evalset, scoring
from devsupport.mesh import Mesh
from sayit.common.v1 import job_pb2
from sayit.speech.v1 import speech_service_pb2 as pb
from sayit.speech.v1 import speech_service_pb2_grpc as pb_grpc
from tests.support.long_audio_mesh import (
    ENDED,
    QUEUE_PAIRS,
    check_history,
    rq_status,
    wait_chunk_running,
    wait_planned,
)
from tests.support.speech import create_job, get, rpc_error, wait_state, watch

pytestmark = [pytest.mark.model, pytest.mark.redis]


def test_restarting_redis_loses_no_job(speech: pb_grpc.SpeechServiceStub, mesh: Mesh) -> None:
    finished = create_job(speech, evalset.clip("en_pv_leopard_test").read(), "en")
    assert wait_state(speech, finished.name, ENDED, 120).state == job_pb2.JOB_STATE_SUCCEEDED
    finished_before = get(speech, finished.name)
    # Two long jobs: more chunks than workers, so some run and some wait.
    files = {start: audio.korean_long(100.0, start=start) for start in (7, 9)}
    long_jobs = {
        create_job(speech, content, "ko").name: start for start, (content, _, _) in files.items()
    }
    running = next(iter(long_jobs))
    wait_chunk_running(mesh, running, 0)
    statuses = [
        rq_status(mesh, name, i) for name in long_jobs for i in range(len(wait_planned(mesh, name)))
    ]
    assert "started" in statuses and "queued" in statuses, statuses
    listed_before = {j.name for j in speech.ListJobs(pb.ListJobsRequest(page_size=100)).jobs}
    # A subscriber following a running job across the restart.
    with ThreadPoolExecutor(1) as pool:
        followed = pool.submit(watch, speech, running)
        mesh.redis.stop()
        error = rpc_error(speech.GetJob, pb.GetJobRequest(name=finished.name), timeout=10)
        assert error.code() == grpc.StatusCode.UNAVAILABLE, error
        time.sleep(3.0)  # down for a while: workers, horses and watchers wait it out
        mesh.redis.start()
        assert get(speech, finished.name) == finished_before
        for name, start in long_jobs.items():
            final = wait_state(speech, name, ENDED, timeout=240)
            assert final.state == job_pb2.JOB_STATE_SUCCEEDED, final.error
            events = watch(speech, name)
            check_history(events)
            assert [e.sequence for e in events] == list(range(1, len(events) + 1))
            reference = files[start][1]
            assert scoring.score(reference, final.transcript.text, "ko").rate < 0.2
        assert followed.result(timeout=60) == watch(speech, running)
    listed_after = {j.name for j in speech.ListJobs(pb.ListJobsRequest(page_size=100)).jobs}
    assert listed_after == listed_before
    assert all(mesh.processes[f"worker-{pair}"].alive() for pair in QUEUE_PAIRS)
