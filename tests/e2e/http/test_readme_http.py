"""README.md's "HTTP and the OpenAI SDK" examples, run as written against the package's HTTP edge,
so that the README cannot rot: the curl command with bash, the Python snippet with this Python
(the official `openai` SDK), both in a working directory laid out like a checkout after
`make up` (`.run/dev-api-key` is the mesh's key, `../shared/eval` the evaluation clips). Only the
edge's fixed address is rewritten."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from devsupport import evalset, scoring
from devsupport.http_edge import HttpEdge
from devsupport.mesh import Mesh

pytestmark = pytest.mark.model

README = Path(__file__).resolve().parents[3] / "README.md"
README_EDGE = "127.0.0.1:8080"


def section() -> str:
    text = README.read_text(encoding="utf-8")
    return text.split("\n## HTTP and the OpenAI SDK\n", 1)[1].split("\n## ")[0]


def block(language: str) -> str:
    match = re.search(rf"```{language}\n(.*?)```", section(), re.S)
    assert match, f"README.md's 'HTTP and the OpenAI SDK' has no ```{language} block"
    return match.group(1)


def clip_of(code: str) -> evalset.Clip:
    """The evaluation clip a README example sends (../shared/eval/audio/<lang>/<id>.flac)."""
    match = re.search(r"\.\./shared/eval/audio/\w+/(\w+)\.\w+", code)
    assert match, code
    return evalset.clip(match.group(1))


@pytest.fixture
def checkout(mesh: Mesh, tmp_path: Path) -> Path:
    assert mesh.api_key, "the README's calls need the mesh's key"
    root = tmp_path / "checkout"
    (root / ".run").mkdir(parents=True)
    (root / ".run" / "dev-api-key").symlink_to(mesh.directory / "dev-api-key")
    (tmp_path / "shared").mkdir()
    (tmp_path / "shared" / "eval").symlink_to(evalset.eval_dir())
    return root


def run(argv: list[str], cwd: Path) -> str:
    done = subprocess.run(
        argv, cwd=cwd, env=dict(os.environ), capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, f"{argv}\nexited {done.returncode}: {done.stderr}"
    return done.stdout


def test_readme_curl_and_openai_sdk_examples_transcribe(
    http_edge: HttpEdge, checkout: Path
) -> None:
    curl = block("sh")
    assert README_EDGE in curl
    text = run(
        ["bash", "-c", "set -o pipefail\n" + curl.replace(README_EDGE, http_edge.addr)], checkout
    )
    english = clip_of(curl)
    # response_format=text: the transcript itself, no JSON around it.
    assert not text.lstrip().startswith("{"), text
    assert scoring.score(english.reference, text, english.language).rate < 0.25, text

    python = block("python")
    assert README_EDGE in python
    text = run([sys.executable, "-c", python.replace(README_EDGE, http_edge.addr)], checkout)
    korean = clip_of(python)
    assert scoring.score(korean.reference, text, korean.language).rate < 0.3, text
