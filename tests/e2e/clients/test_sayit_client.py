"""The Python client (services.client.SayItClient) against the real mesh: re-attaching across a
gateway restart, waiting for queued jobs, the polling fallback, and errors."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import grpc
import pytest

from devsupport import scoring
from devsupport.mesh import Mesh
from sayit.common.v1 import job_pb2
from services.client import ClientError, SayItClient
from services.client.polling import poll_interval

pytestmark = pytest.mark.model


def test_watch_reattaches_across_a_gateway_restart_without_loss_or_repeats(
    mesh: Mesh, client: SayItClient, long_korean: tuple[bytes, str, float]
) -> None:
    job = client.submit(long_korean[0], language="ko")
    events = client.watch(job.name)
    seen = []
    for event in events:
        seen.append(event)
        if event.HasField("segment"):
            break
    restarts_before = mesh.logs("gateway").count('"server_started"')
    mesh.restart("gateway")  # SIGKILL mid-stream, then the same address again
    assert mesh.logs("gateway").count('"server_started"') == restarts_before + 1
    seen += list(events)
    assert [e.sequence for e in seen] == list(range(1, len(seen) + 1))
    assert seen[-1].HasField("completed") and seen[0].HasField("accepted")
    assert seen[-1].completed.transcript == client.get_job(job.name).transcript
    # The rest came over a stream of the new gateway process.
    after_restart = mesh.logs("gateway").rsplit('"server_started"', 1)[1]
    assert '"WatchJob"' in after_restart or "WatchJob" in after_restart


def test_transcribe_waits_for_queued_jobs_and_polling_fallback(
    client: SayItClient, long_korean: tuple[bytes, str, float]
) -> None:
    content, reference, seconds = long_korean
    polled = client.submit(content, language="ko")
    started = time.monotonic()
    pauses: list[tuple[float, float]] = []

    readings: list[float] = []

    def clock() -> float:
        # Thirty times real time, so the 30 s switch happens after 1 s, well within the job
        # (which can take under 5 s on a fast machine).
        readings.append(started + (time.monotonic() - started) * 30)
        return readings[-1]

    def sleep(seconds: float) -> None:
        # The client chose `seconds` from its last reading, counted from its first: reading the
        # clock again here could land past the 30 s switch (a busy machine, at 30x).
        pauses.append((readings[-1] - readings[0], seconds))
        time.sleep(seconds / 30)

    snapshots: list[job_pb2.TranscriptionJob] = []
    poller = threading.Thread(
        target=lambda: snapshots.extend(client.poll(polled.name, sleep=sleep, clock=clock))
    )
    poller.start()
    # Meanwhile, transcribe() of long audio returns the transcript of its queued job.
    transcript = client.transcribe(content, language="ko")
    assert transcript.audio_duration_seconds == pytest.approx(seconds, abs=0.5)
    assert scoring.score(reference, transcript.text, "ko").rate < 0.15
    poller.join(timeout=300)
    assert snapshots[-1].state == job_pb2.JOB_STATE_SUCCEEDED
    assert snapshots[-1].transcript.text == client.get_job(polled.name).transcript.text
    # A snapshot each time the state or progress changed, progress never going back.
    seen = [(s.state, s.progress.fraction) for s in snapshots]
    assert len(set(seen)) == len(seen) > 2
    assert [f for _, f in seen] == sorted(f for _, f in seen)
    assert pauses and all(pause == poll_interval(at) for at, pause in pauses)
    assert {3.0, 5.0} <= {pause for _, pause in pauses}


def test_client_errors_carry_the_code(client: SayItClient) -> None:
    with pytest.raises(ClientError) as caught:
        client.get_job("jobs/" + "f" * 32)
    assert caught.value.code == grpc.StatusCode.NOT_FOUND
    with pytest.raises(ClientError) as caught:
        client.transcribe(b"\x00not audio" * 100, language="ko")
    assert caught.value.code == grpc.StatusCode.INVALID_ARGUMENT
    assert client.health() == "SERVING"


def test_the_client_finds_the_dev_key_in_dot_run_of_the_working_directory(
    mesh: Mesh, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert mesh.api_key, "the test mesh requires API keys"
    monkeypatch.delenv("SAYIT_API_KEY", raising=False)
    monkeypatch.chdir(tmp_path)
    with SayItClient(mesh.gateway_addr) as client, pytest.raises(ClientError) as refused:
        client.list_jobs(page_size=1)
    assert refused.value.code == grpc.StatusCode.UNAUTHENTICATED
    (tmp_path / ".run").mkdir()
    (tmp_path / ".run" / "dev-api-key").write_text(mesh.api_key + "\n")
    with SayItClient(mesh.gateway_addr) as client:
        jobs, _ = client.list_jobs(page_size=1)
    assert isinstance(jobs, list)
