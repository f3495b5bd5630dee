"""Shared fixtures: a real transcriber process and a private Redis, one of each for the session."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from devsupport import processes
from devsupport.mesh import RedisServer


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


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """A redis-server of the tests' own on a free port, for tests that read and write Redis
    directly (each works under keys of its own, or empties it first); tests that kill or
    restart Redis start their own."""
    server = RedisServer(tmp_path_factory.mktemp("redis")).start()
    yield server
    server.stop()
