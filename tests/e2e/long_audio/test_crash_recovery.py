"""Long audio at scale, end to end: bounded recovery when a worker or its transcriber is
SIGKILLed mid-chunk, and a poison chunk that fails its job after bounded attempts. The mesh is
this package's (conftest.py)."""

from __future__ import annotations

import os
import signal
import threading
import time

import grpc
import pytest

from devsupport import audio, evalset, scoring
from devsupport.mesh import Mesh
from sayit.common.v1 import job_pb2
from sayit.speech.v1 import speech_service_pb2_grpc as pb_grpc
from tests.support.long_audio_mesh import (
    ENDED,
    QUEUE_PAIRS,
    RECOVERY_BOUND_SECONDS,
    RETRIES,
    check_history,
    chunk_starts,
    job_id,
    log_time,
    wait_chunk_running,
    wait_planned,
)
from tests.support.speech import create_job, get, wait_state, watch

pytestmark = [pytest.mark.model, pytest.mark.redis]


def _recover_after_kill(
    speech: pb_grpc.SpeechServiceStub, mesh: Mesh, what: str, start: int
) -> None:
    content, reference, _ = audio.korean_long(100.0, start=start)
    job = create_job(speech, content, "ko")
    assert len(wait_planned(mesh, job.name)) == 2  # two chunks, three workers: one is free
    holder = wait_chunk_running(mesh, job.name, 0)
    victim = holder if what == "worker" else holder.replace("worker-", "transcriber-")
    killed_at = time.time()
    mesh.processes[victim].kill()  # SIGKILL (and its work horse, for a worker)
    try:
        final = wait_state(speech, job.name, ENDED, timeout=240)
        assert final.state == job_pb2.JOB_STATE_SUCCEEDED, final.error
        starts = chunk_starts(mesh, job.name, 0)
        again = [(w, t) for w, t in starts if t > killed_at]
        assert again and again[0][0] != holder, starts
        recovery = again[0][1] - killed_at
        print(f"{what} killed: chunk 0 picked up by {again[0][0]} {recovery:.1f} s later")
        assert recovery <= RECOVERY_BOUND_SECONDS
        check_history(watch(speech, job.name))
        assert scoring.score(reference, final.transcript.text, "ko").rate < 0.2
        if what == "transcriber":
            # Its worker took nothing while its transcriber was down.
            log = mesh.log_events(holder)
            assert any(e.get("event") == "worker_paused" and log_time(e) > killed_at for e in log)
            assert not [
                e for e in log if e.get("event") == "chunk_started" and log_time(e) > killed_at
            ]
    finally:
        mesh.restart(victim)
    if what == "worker":
        # Restarted, it registers at once under a name of its own, without waiting for its dead
        # predecessor's registration to expire.
        assert mesh.rq_worker(victim) is not None, "the restarted worker did not register"


def test_a_chunk_recovers_from_a_killed_worker(
    speech: pb_grpc.SpeechServiceStub, mesh: Mesh
) -> None:
    _recover_after_kill(speech, mesh, "worker", start=1)


def test_a_chunk_recovers_from_a_killed_transcriber(
    speech: pb_grpc.SpeechServiceStub, mesh: Mesh
) -> None:
    _recover_after_kill(speech, mesh, "transcriber", start=5)


def test_a_poison_chunk_fails_its_job_after_bounded_attempts(
    speech: pb_grpc.SpeechServiceStub, mesh: Mesh
) -> None:
    """A chunk that kills its transcriber every time (here: the test kills any transcriber
    that starts it) fails the job after 1 + retries attempts; another job goes through."""
    poison_audio, _, _ = audio.korean_long(40.0, start=3)
    poison = create_job(speech, poison_audio, "ko")
    other_clip = evalset.clip("en_jfk")
    other = create_job(speech, other_clip.read(), "en")
    kills: list[str] = []
    stop = threading.Event()

    def killer() -> None:
        seen: set[tuple[str, str]] = set()
        while not stop.is_set():
            for pair in QUEUE_PAIRS:
                name = f"transcriber-{pair}"
                process = mesh.processes[name]
                for event in mesh.log_events(name):
                    key = (name, event.get("timestamp", ""))
                    if (
                        event.get("event") == "transcription_started"
                        and event.get("job_id") == job_id(poison.name)
                        and key not in seen
                    ):
                        seen.add(key)
                        if process.alive():
                            os.killpg(process.pid, signal.SIGKILL)
                            process.process.wait()  # type: ignore[union-attr]
                            kills.append(name)
                            threading.Thread(target=mesh.restart, args=(name,)).start()
            time.sleep(0.05)

    thread = threading.Thread(target=killer, daemon=True)
    thread.start()
    try:
        assert wait_state(speech, other.name, ENDED, 120).state == job_pb2.JOB_STATE_SUCCEEDED
        final = wait_state(speech, poison.name, ENDED, 180)
    finally:
        stop.set()
        thread.join()
    assert final.state == job_pb2.JOB_STATE_FAILED, final
    print(f"poison job failed after {len(kills)} attempts: {final.error.message}")
    assert len(kills) == RETRIES + 1
    assert "transcriber stopped while transcribing it" in final.error.message
    assert f"every attempt ({RETRIES + 1}" in final.error.message
    assert final.error.code == grpc.StatusCode.INTERNAL.value[0]
    check_history(watch(speech, poison.name))
    assert "platforms" not in get(speech, other.name).transcript.text  # its own text, not mixed
    assert (
        scoring.score(other_clip.reference, get(speech, other.name).transcript.text, "en").rate
        < 0.2
    )
    for name in {*kills}:  # every killed transcriber is back
        mesh.processes[name].wait_serving()
