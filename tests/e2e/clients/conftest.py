"""Fixtures of the client tests (this package), on the session's mesh: one Python client and one
long Korean file, package-scoped so the modules share them as the single module they came
from did. The modules' names keep that module's order: metrics and logs first, while the mesh
is quiet, then the CLI, then the Python client."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from devsupport import audio
from devsupport.mesh import Mesh
from services.client import SayItClient


@pytest.fixture(scope="package")
def long_korean() -> tuple[bytes, str, float]:
    return audio.korean_long(45.0)


@pytest.fixture(scope="package")
def client(mesh: Mesh) -> Iterator[SayItClient]:
    with SayItClient(mesh.gateway_addr, api_key=mesh.api_key) as c:
        yield c
