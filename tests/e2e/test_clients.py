"""The `sayit` CLI and the Python client against the real mesh, the metrics every service
serves, and one job followed through every service's logs.

The CLI runs as the installed console script in a subprocess; its output files are parsed with
independent subtitle parsers. This module runs first in the session, on a quiet mesh, so the
metric deltas it asserts are exactly its own.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
import srt
import webvtt

from devsupport import audio, evalset, scoring
from devsupport.mesh import Mesh
from devsupport.processes import free_port
from sayit.common.v1 import job_pb2
from services.client import ClientError, SayItClient
from services.client.formats import cues
from services.client.polling import poll_interval
from tests.support.prometheus import scrape, value

pytestmark = pytest.mark.model

SHORT_KO = "ko_deeply_sub100111a00054"
SHORT_EN = "en_jfk"
LONG_EN = "en_long_ljspeech_LJ001"
SAYIT = shutil.which("sayit", path=str(Path(sys.executable).parent))


@pytest.fixture(scope="module")
def long_korean() -> tuple[bytes, str, float]:
    return audio.korean_long(45.0)


@pytest.fixture(scope="module")
def client(mesh: Mesh) -> Iterator[SayItClient]:
    with SayItClient(mesh.gateway_addr) as c:
        yield c


def cli_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SAYIT_")}
    env["COLUMNS"] = "200"
    return env


def sayit(mesh: Mesh, *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    assert SAYIT, "the sayit console script is not installed (make install)"
    return subprocess.run(
        [SAYIT, "--addr", mesh.gateway_addr, *args],
        capture_output=True,
        text=True,
        env=cli_env(),
        timeout=timeout,
        stdin=subprocess.DEVNULL,
    )


def job_names(stderr: str) -> dict[str, str]:
    """{file label: job name} from the CLI's "label: jobs/<id> (...)" lines."""
    return dict(re.findall(r"^(\S+): (jobs/[0-9a-f]{32}) \(", stderr, re.MULTILINE))


# --- metrics and logs (first: the mesh is quiet) ------------------------------------------------


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


# --- the sayit CLI ------------------------------------------------------------------------------


def test_cli_transcribes_files_into_subtitles_and_formats(
    mesh: Mesh, tmp_path: Path, client
) -> None:  # type: ignore[no-untyped-def]
    ko, en = evalset.clip(SHORT_KO), evalset.clip(SHORT_EN)
    out = tmp_path / "subs"
    result = sayit(
        mesh, "transcribe", str(ko.path), str(en.path), "--format", "srt", "--out", str(out)
    )
    assert result.returncode == 0, result.stderr
    names = job_names(result.stderr)
    assert set(names) == {ko.path.name, en.path.name}, result.stderr
    assert result.stderr.count(": done, ") == 2
    assert re.search(r"done\s+━+\s+100%\s+8\.4/8\.4 s", result.stderr), result.stderr
    for clip in (ko, en):
        document = (out / f"{clip.path.stem}.srt").read_text()
        parsed = list(srt.parse(document))
        transcript = client.get_job(names[clip.path.name]).transcript
        expected = cues(transcript)
        assert len(parsed) == len(expected) >= 1
        assert [s.start.total_seconds() for s in parsed] == [round(c.start, 3) for c in expected]
        text = " ".join(s.content.replace("\n", " ") for s in parsed)
        assert text.split() == transcript.text.split()
        assert scoring.score(clip.reference, text, clip.language).rate < 0.2
        assert parsed[-1].end.total_seconds() <= clip.duration_seconds + 0.5
        # The CLI asked for word timestamps for subtitles.
        assert all(s.words for s in transcript.segments)

    # Other formats from the stored job, without transcribing again.
    name = names[ko.path.name]
    result = sayit(mesh, "jobs", "get", name, "--format", "vtt", "--out", str(tmp_path / "vtt"))
    assert result.returncode == 0, result.stderr
    captions = webvtt.read(str(tmp_path / "vtt" / f"{ko.path.stem}.vtt")).captions
    assert len(captions) == len(list(srt.parse((out / f"{ko.path.stem}.srt").read_text())))
    result = sayit(mesh, "jobs", "get", name, "--format", "json")
    data = json.loads(result.stdout)
    assert data["text"] == client.get_job(name).transcript.text and data["language_code"] == "ko"
    result = sayit(mesh, "jobs", "get", name)
    assert result.returncode == 0 and "succeeded" in result.stdout and data["text"] in result.stdout


def test_cli_errors_print_the_code_and_exit_non_zero(mesh: Mesh, tmp_path: Path) -> None:
    not_audio = tmp_path / "notes.wav"
    not_audio.write_text("this is a text file, not audio\n" * 20)
    result = sayit(mesh, "transcribe", str(not_audio), "--out", str(tmp_path))
    assert result.returncode == 1
    assert "INVALID_ARGUMENT" in result.stderr and "decode" in result.stderr
    assert not (tmp_path / "notes.txt").exists()

    result = sayit(mesh, "jobs", "get", "jobs/" + "0" * 32)
    assert result.returncode == 1 and "NOT_FOUND" in result.stderr

    result = sayit(mesh, "jobs", "get", "nonsense")
    assert result.returncode == 1 and "INVALID_ARGUMENT" in result.stderr

    result = sayit(mesh, "transcribe", str(tmp_path / "missing.flac"))
    assert result.returncode == 2 and "no such file" in result.stderr

    result = sayit(mesh, "health")
    assert result.returncode == 0 and "SERVING" in result.stdout

    down = subprocess.run(
        [SAYIT or "sayit", "--addr", f"127.0.0.1:{free_port()}", "health"],
        capture_output=True,
        text=True,
        env=cli_env(),
        timeout=120,
    )
    assert down.returncode == 1 and "UNAVAILABLE" in down.stderr


def test_cli_no_wait_watch_list_and_cancel(mesh: Mesh, tmp_path: Path, client) -> None:  # type: ignore[no-untyped-def]
    short, long = evalset.clip(SHORT_KO), evalset.clip(LONG_EN)
    result = sayit(mesh, "transcribe", str(short.path), str(long.path), "--no-wait")
    assert result.returncode == 0, result.stderr
    short_name, long_name = result.stdout.split()
    assert re.fullmatch(r"jobs/[0-9a-f]{32}", short_name)

    result = sayit(mesh, "jobs", "cancel", long_name)
    assert result.returncode == 0 and "cancelled" in result.stderr
    assert client.get_job(long_name).state == job_pb2.JOB_STATE_CANCELLED
    result = sayit(mesh, "jobs", "cancel", long_name)
    assert result.returncode == 1 and "FAILED_PRECONDITION" in result.stderr

    result = sayit(mesh, "jobs", "watch", short_name, "--format", "srt", "--out", str(tmp_path))
    assert result.returncode == 0, result.stderr
    assert list(srt.parse((tmp_path / f"{short.path.stem}.srt").read_text()))
    assert client.get_job(short_name).state == job_pb2.JOB_STATE_SUCCEEDED

    result = sayit(mesh, "jobs", "list", "--limit", "5")
    assert result.returncode == 0
    listed = re.findall(r"jobs/[0-9a-f]{32}", result.stdout)
    assert listed[:2] == [long_name, short_name]  # newest first
    assert "cancelled" in result.stdout and "succeeded" in result.stdout


@pytest.mark.parametrize(("answer", "cancelled"), [("y", True), ("", False)])
def test_ctrl_c_asks_to_cancel_or_leave_the_job(
    mesh: Mesh, tmp_path: Path, client, answer: str, cancelled: bool
) -> None:  # type: ignore[no-untyped-def]
    long = evalset.clip(LONG_EN)
    process = subprocess.Popen(
        [
            SAYIT or "sayit",
            "--addr",
            mesh.gateway_addr,
            "transcribe",
            str(long.path),
            "--out",
            str(tmp_path),
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=cli_env(),
    )
    assert process.stderr is not None and process.stdin is not None
    first = process.stderr.readline()  # "<file>: jobs/<id> (231.0 s of audio, queued)"
    name = job_names(first)[long.path.name]
    process.send_signal(signal.SIGINT)
    process.stdin.write(answer + "\n")
    process.stdin.flush()
    try:
        rest = process.communicate(timeout=60)[1]
    finally:
        process.kill()
    assert process.returncode == 130
    assert "Cancel 1 job(s)" in rest and name in rest
    job = client.get_job(name)
    if cancelled:
        assert f"{name} cancelled" in rest
        assert job.state == job_pb2.JOB_STATE_CANCELLED
    else:
        assert f"{name} left running" in rest and f"sayit jobs watch {name}" in rest
        assert job.state in (job_pb2.JOB_STATE_QUEUED, job_pb2.JOB_STATE_RUNNING)
        client.cancel_job(name)  # free the worker for the next tests
    assert not list(tmp_path.iterdir())  # nothing written for an interrupted file


# --- the Python client --------------------------------------------------------------------------


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

    def clock() -> float:
        # Six times real time, so the 30 s switch happens within the job.
        return started + (time.monotonic() - started) * 6

    def sleep(seconds: float) -> None:
        pauses.append((clock() - started, seconds))
        time.sleep(seconds / 6)

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
