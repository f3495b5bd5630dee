"""The metrics every service serves, and one job followed through every service's logs, after
one short and one long transcription by the Python client. This module runs first in the
session, on a quiet mesh, so the metric deltas it asserts are exactly its own."""

from __future__ import annotations

import json
import time
import uuid

import pytest

from devsupport import evalset
from devsupport.mesh import Mesh
from services.client import SayItClient
from tests.support.client_clips import SHORT_KO
from tests.support.prometheus import scrape, value

pytestmark = pytest.mark.model


def scrape_all(mesh: Mesh) -> dict[str, dict]:  # type: ignore[type-arg]
    return {name: scrape(addr) for name, addr in mesh.metrics_addrs.items()}


def total(scrapes: dict[str, dict], prefix: str, name: str, **labels: str) -> float:  # type: ignore[type-arg]
    return sum(value(s, name, **labels) for n, s in scrapes.items() if n.startswith(prefix))


@pytest.fixture(scope="module")
def traced(mesh: Mesh, client: SayItClient, long_korean: tuple[bytes, str, float]):  # type: ignore[no-untyped-def]
    """One short direct transcription and one long queued job with a request id of ours, and
    every metrics endpoint scraped before and after."""
    before = scrape_all(mesh)
    short = evalset.clip(SHORT_KO)
    short_transcript = client.transcribe(short.path, language="ko")
    request_id = f"trace-{uuid.uuid4().hex[:12]}"
    job = client.submit(long_korean[0], language="ko", request_id=request_id, filename="long.wav")
    long_transcript = client.wait(job.name)
    time.sleep(0.5)  # the last rpc_finished lines and metric updates land after the answer
    after = scrape_all(mesh)
    return {
        "before": before,
        "after": after,
        "short": (short, short_transcript),
        "long": (job.name, long_transcript, long_korean[2]),
        "request_id": request_id,
    }


def test_metrics_move_by_what_was_transcribed(traced, mesh: Mesh) -> None:  # type: ignore[no-untyped-def]
    before, after = traced["before"], traced["after"]
    short_clip, short_transcript = traced["short"]
    _, long_transcript, _ = traced["long"]

    def delta(prefix: str, name: str, **labels: str) -> float:
        return total(after, prefix, name, **labels) - total(before, prefix, name, **labels)

    speech = "sayit.speech.v1.SpeechService"
    # Gateway: one RPC of each kind, all OK, each timed; no cache yet.
    for method in ("Transcribe", "CreateJob", "WatchJob"):
        assert (
            delta("gateway", "grpc_server_handled_total", grpc_method=method, grpc_code="OK") == 1
        ), method
        assert (
            delta(
                "gateway",
                "grpc_server_handling_seconds_count",
                grpc_service=speech,
                grpc_method=method,
            )
            == 1
        )
    assert delta("gateway", "grpc_server_handled_total", grpc_code="INTERNAL") == 0
    assert delta("gateway", "sayit_cache_hits_total") == 0
    # Scheduler: two submissions, one direct and one queued on the default queue.
    assert delta("scheduler", "grpc_server_handled_total", grpc_method="SubmitJob") == 2
    assert delta("scheduler", "sayit_jobs_submitted_total", routing="direct") == 1
    assert delta("scheduler", "sayit_jobs_submitted_total", queue="sayit-default") == 1
    # Both jobs succeeded: the direct one recorded by the scheduler, the queued one by a worker
    # (in its work horse: multiprocess mode keeps the count after the horse exits).
    assert delta("scheduler", "sayit_jobs_finished_total", outcome="succeeded") == 1
    assert delta("worker", "sayit_jobs_finished_total", outcome="succeeded") == 1
    assert delta("", "sayit_jobs_finished_total", outcome="failed") == 0
    assert delta("worker", "sayit_queue_wait_seconds_count", queue="sayit-default") == 1
    assert delta("", "sayit_chunk_retries_total") == 0
    assert value(after["scheduler"], "sayit_queue_depth", queue="sayit-default") == 0
    assert value(after["scheduler"], "sayit_queue_depth", queue="sayit-high") == 0
    assert value(after["scheduler"], "sayit_direct_slots_total") == mesh.direct_slots
    # Transcribers: the audio seconds of each transcription, on the path it took.
    short_seconds = short_transcript.audio_duration_seconds
    assert short_seconds == pytest.approx(short_clip.duration_seconds, abs=0.1)
    assert delta(
        "transcriber-direct", "sayit_audio_seconds_transcribed_total", model="base"
    ) == pytest.approx(short_seconds, abs=0.01)
    assert delta(
        "transcriber-q", "sayit_audio_seconds_transcribed_total", model="base"
    ) == pytest.approx(long_transcript.audio_duration_seconds, abs=0.01)
    for prefix in ("transcriber-direct", "transcriber-q"):
        assert delta(prefix, "sayit_transcription_real_time_factor_count", model="base") == 1
        assert delta(prefix, "sayit_transcriptions_total", outcome="completed") == 1
        assert delta(prefix, "sayit_transcription_real_time_factor_sum", model="base") > 0
    assert value(after["transcriber-direct"], "sayit_transcriber_slots_total") == 2
    assert value(after["transcriber-direct"], "sayit_transcriber_slots_busy") == 0


def log_lines(mesh: Mesh, name: str) -> list[dict]:  # type: ignore[type-arg]
    lines = []
    for raw in mesh.logs(name).splitlines():
        try:
            lines.append(json.loads(raw))
        except json.JSONDecodeError:
            continue
    return lines


def test_one_job_is_followed_through_every_service_by_its_ids(traced, mesh: Mesh) -> None:  # type: ignore[no-untyped-def]
    job_name, _, _ = traced["long"]
    job_id = job_name.removeprefix("jobs/")
    request_id = traced["request_id"]
    found: dict[str, list[str]] = {}
    for name in mesh.processes:
        lines = log_lines(mesh, name)
        about = [line for line in lines if job_id in json.dumps(line, ensure_ascii=False)]
        if not about:
            continue
        # Every line about the job carries its id as a field and a request id.
        for line in about:
            assert line.get("job_id") == job_id, (name, line)
            assert line.get("request_id"), (name, line)
        # The submission's own chain carries the caller's request id end to end.
        found[name] = [line["event"] for line in about if line["request_id"] == request_id]
    gateway, scheduler = found.get("gateway", []), found.get("scheduler", [])
    assert "rpc_finished" in gateway  # CreateJob
    assert {"job_accepted", "rpc_finished"} <= set(scheduler)
    workers = [n for n in found if n.startswith("worker")]
    transcribers = [n for n in found if n.startswith("transcriber-q")]
    assert len(workers) == 1 and len(transcribers) == 1, found.keys()
    assert {"chunk_started", "chunk_finished"} <= set(found[workers[0]])
    assert {"transcription_started", "transcription_finished", "rpc_finished"} <= set(
        found[transcribers[0]]
    )
    # The worker and the transcriber it ran on are a pair (worker-qN beside transcriber-qN).
    assert workers[0].removeprefix("worker-") == transcribers[0].removeprefix("transcriber-")
