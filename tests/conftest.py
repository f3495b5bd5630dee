"""Shared fixtures: the evaluation clips and a real transcriber process."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from devsupport import processes


@pytest.fixture(scope="session")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("services")


@pytest.fixture(scope="session")
def transcriber(run_dir: Path) -> Iterator[processes.ServiceProcess]:
    """One transcriber with the bundled base model and two slots, shared by the session."""
    service = processes.transcriber(
        run_dir, SAYIT_TRANSCRIBER_SLOTS="2", SAYIT_CPU_THREADS="1"
    ).start()
    try:
        service.wait_serving()
        yield service
    finally:
        service.stop()
