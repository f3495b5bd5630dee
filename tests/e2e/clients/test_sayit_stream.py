"""Live recognition's clients against the real mesh: `sayit stream FILE` and `sayit stream -` as
the installed console script, and the Python client's iterator (`SayItClient.stream_file`).
Audio goes faster than real time (flow control paces it) except where the pace is the point."""

from __future__ import annotations

import os
import pty
import re
import subprocess

import pytest

from devsupport import evalset, scoring
from devsupport.mesh import Mesh
from sayit.common.v1 import job_pb2
from services.client import (
    LiveResult,
    SayItClient,
    SessionStarted,
    SpeechEnded,
    SpeechStarted,
)
from tests.e2e.clients.test_sayit_cli import SAYIT, cli_env, sayit
from tests.support.client_clips import SHORT_EN, SHORT_KO

pytestmark = pytest.mark.model

JOB_LINE = re.compile(r"^(jobs/[0-9a-f]{32}) \(follow: sayit jobs watch \1\)$", re.MULTILINE)
# A short clip for the real-time run: it costs its length.
REALTIME_CLIP = "ko_deeply_sub100102a00085"  # 2.7 s
REALTIME_OPTIONS = ("--realtime", "--language", "ko")


def job_name_of(stderr: str) -> str:
    match = JOB_LINE.search(stderr)
    assert match, stderr
    return match.group(1)


def test_sayit_stream_file_prints_final_lines_and_the_session_is_a_job(
    mesh: Mesh, client: SayItClient
) -> None:
    clip = evalset.clip(SHORT_KO)
    result = sayit(mesh, "stream", str(clip.path), "--language", "ko", timeout=180)
    assert result.returncode == 0, result.stderr
    name = job_name_of(result.stderr)
    # Not a terminal: final lines only, one an utterance.
    lines = result.stdout.splitlines()
    assert lines and all(line.strip() for line in lines), result.stdout
    said = " ".join(lines)
    assert scoring.score(clip.reference, said, "ko").rate < 0.3, said
    assert f"{name}: ended, {len(lines)} final result(s)" in result.stderr
    job = client.get_job(name)
    assert job.state == job_pb2.JOB_STATE_SUCCEEDED, job
    assert job.transcript.text.split() == said.split()
    assert job.transcript.audio_duration_seconds == pytest.approx(clip.duration_seconds, abs=0.2)


def test_sayit_stream_stdin_takes_raw_pcm(mesh: Mesh) -> None:
    clip = evalset.clip(SHORT_EN)
    assert SAYIT
    pcm = subprocess.run(
        [SAYIT, "pcm", str(clip.path)], capture_output=True, check=True, timeout=60
    ).stdout
    assert len(pcm) == pytest.approx(clip.duration_seconds * 32_000, abs=3200)
    result = subprocess.run(
        [SAYIT, "--addr", mesh.gateway_addr, "stream", "-", "--language", "en", "--timestamps"],
        input=pcm,
        capture_output=True,
        env=cli_env(mesh),
        timeout=180,
    )
    stderr = result.stderr.decode()
    assert result.returncode == 0, stderr
    job_name_of(stderr)
    lines = result.stdout.decode().splitlines()
    stamped = [
        re.fullmatch(r"\[(\d\d):(\d\d\.\d) → (\d\d):(\d\d\.\d)\] (.+)", line) for line in lines
    ]
    assert lines and all(stamped), lines
    ends = [int(m[3]) * 60 + float(m[4]) for m in stamped if m]
    assert ends == sorted(ends) and ends[-1] <= clip.duration_seconds + 0.5
    said = " ".join(m[5] for m in stamped if m)
    assert scoring.score(clip.reference, said, "en").rate < 0.25, said


def test_sayit_stream_realtime_on_a_terminal_shows_interim_text_in_place(mesh: Mesh) -> None:
    clip = evalset.clip(REALTIME_CLIP)
    assert SAYIT
    controller, terminal = pty.openpty()
    try:
        process = subprocess.Popen(
            [SAYIT, "--addr", mesh.gateway_addr, "stream", str(clip.path), *REALTIME_OPTIONS],
            stdout=terminal,
            stderr=subprocess.PIPE,
            stdin=subprocess.DEVNULL,
            env=cli_env(mesh),
        )
        os.close(terminal)
        terminal = -1
        screen = b""
        while True:
            try:
                data = os.read(controller, 4096)
            except OSError:  # the terminal closed with the process
                break
            if not data:
                break
            screen += data
        assert process.wait(120) == 0, process.stderr.read() if process.stderr else ""
    finally:
        os.close(controller)
        if terminal >= 0:
            os.close(terminal)
    text = screen.decode()
    # Interim text rewritten in place (carriage return, line cleared), then the final line.
    assert "\r\x1b[K" in text, repr(text)
    finals = [line.rsplit("\x1b[K", 1)[-1] for line in text.replace("\r\n", "\n").split("\n")]
    said = " ".join(f for f in finals if f.strip())
    assert scoring.score(clip.reference, said, "ko").rate < 0.3, repr(text)


def test_the_python_iterator_gives_updates_in_the_contracts_order(client: SayItClient) -> None:
    clip = evalset.clip(SHORT_EN)
    session = client.stream_file(clip.path, realtime=False, language="en", word_timestamps=True)
    updates = list(session)
    assert isinstance(updates[0], SessionStarted)
    assert re.fullmatch(r"jobs/[0-9a-f]{32}", session.job_name)
    assert all(u.job_name == session.job_name for u in updates)
    # Per utterance: started, interims, ended, final; the next utterance only after the final.
    open_utterance = 0
    for update in updates[1:]:
        if isinstance(update, SpeechStarted):
            assert open_utterance == 0, updates
            open_utterance = update.utterance
        elif isinstance(update, LiveResult) and not update.is_final:
            assert update.utterance == open_utterance and 0 <= update.stability <= 1
        elif isinstance(update, SpeechEnded):
            assert update.utterance == open_utterance
        elif isinstance(update, LiveResult):
            assert update.utterance == open_utterance and update.stability == 1.0
            assert update.words, "word timestamps were asked for"
            open_utterance = 0
    assert open_utterance == 0, "an utterance ended without its final result"
    assert session.finals and [r.utterance for r in session.finals] == list(
        range(1, len(session.finals) + 1)
    )
    assert scoring.score(clip.reference, session.transcript, "en").rate < 0.25
    job = client.get_job(session.job_name)
    assert job.state == job_pb2.JOB_STATE_SUCCEEDED
    assert job.transcript.text.split() == session.transcript.split()


def test_the_python_iterator_at_real_time_gives_interim_results_first(
    client: SayItClient,
) -> None:
    clip = evalset.clip(REALTIME_CLIP)
    results = list(client.stream_file(clip.path, language="ko").results())
    assert results[-1].is_final
    interims = [r for r in results if not r.is_final]
    assert interims, "no interim result while the clip was spoken in real time"
    assert all(r.end_seconds <= results[-1].end_seconds + 0.1 for r in interims)
