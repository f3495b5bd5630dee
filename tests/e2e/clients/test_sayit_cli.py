"""The `sayit` CLI against the real mesh. It runs as the installed console script in a
subprocess; its output files are parsed with independent subtitle parsers."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import srt
import webvtt

from devsupport import evalset, scoring
from devsupport.mesh import Mesh
from devsupport.processes import free_port
from sayit.common.v1 import job_pb2
from services.client.formats import cues
from tests.support.client_clips import LONG_EN, SHORT_EN, SHORT_KO

pytestmark = pytest.mark.model

SAYIT = shutil.which("sayit", path=str(Path(sys.executable).parent))


def cli_env(mesh: Mesh | None = None) -> dict[str, str]:
    """The environment without the caller's SAYIT_* settings; with the mesh's dev key."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SAYIT_")}
    if mesh is not None and mesh.api_key:
        env["SAYIT_API_KEY"] = mesh.api_key
    env["COLUMNS"] = "200"
    return env


def sayit(mesh: Mesh, *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    assert SAYIT, "the sayit console script is not installed (make install)"
    return subprocess.run(
        [SAYIT, "--addr", mesh.gateway_addr, *args],
        capture_output=True,
        text=True,
        env=cli_env(mesh),
        timeout=timeout,
        stdin=subprocess.DEVNULL,
    )


def job_names(stderr: str) -> dict[str, str]:
    """{file label: job name} from the CLI's "label: jobs/<id> (...)" lines."""
    return dict(re.findall(r"^(\S+): (jobs/[0-9a-f]{32}) \(", stderr, re.MULTILINE))


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
        env=cli_env(mesh),
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


def test_cli_finds_the_dev_key_in_dot_run_of_the_working_directory(
    mesh: Mesh, tmp_path: Path
) -> None:
    assert mesh.api_key, "the test mesh requires API keys"

    def jobs_list() -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [SAYIT or "sayit", "--addr", mesh.gateway_addr, "jobs", "list", "--limit", "1"],
            capture_output=True,
            text=True,
            env=cli_env(),  # no SAYIT_API_KEY
            cwd=tmp_path,
            timeout=120,
        )

    without = jobs_list()
    assert without.returncode == 1 and "UNAUTHENTICATED" in without.stderr, without.stderr
    assert "no API key" in without.stderr
    (tmp_path / ".run").mkdir()
    (tmp_path / ".run" / "dev-api-key").write_text(mesh.api_key + "\n")
    found = jobs_list()
    assert found.returncode == 0, found.stderr
