"""One real mesh (private Redis, real workers, real model) shared by the end-to-end tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from devsupport.mesh import Mesh, running, stop
from sayit.speech.v1 import speech_service_pb2_grpc as pb_grpc
from tests.support.edge import EdgeMesh, start_edge_mesh


@pytest.fixture(scope="session")
def mesh(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Mesh]:
    # These tests are about the mesh itself: every job is one chunk, and repeated audio is
    # transcribed again (tests/e2e/long_audio/ covers chunking and the result cache).
    with running(
        tmp_path_factory.mktemp("mesh"),
        extra_env={
            "SAYIT_CHUNK_MIN_SECONDS": "100000",
            "SAYIT_RESULT_CACHE_TTL_SECONDS": "0",
            # Short jobs wait for a direct slot rather than overflow to the queue even on a slow
            # machine (tests/e2e/test_direct_wait.py covers a wait that runs out).
            "SAYIT_DIRECT_WAIT_SECONDS": "60",
            # Live sessions that stop sending end soon (tests/e2e/live: the idle timeout).
            "SAYIT_STREAM_IDLE_SECONDS": "3",
        },
        metrics=True,
    ) as mesh:
        yield mesh


@pytest.fixture(scope="session")
def speech(mesh: Mesh) -> pb_grpc.SpeechServiceStub:
    # The mesh requires API keys: every call carries its dev key.
    return pb_grpc.SpeechServiceStub(
        mesh.gateway_channel(
            **{
                "grpc.max_receive_message_length": 64 << 20,
                "grpc.max_send_message_length": 64 << 20,
            }
        )
    )


@pytest.fixture(scope="session")
def edge(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EdgeMesh]:
    """A second mesh with API keys, per-tenant limits, mutual TLS and a short queue-wait
    limit (see tests/support/edge.py), shared by the edge and fuzz tests."""
    edge_mesh, redis_server = start_edge_mesh(tmp_path_factory.mktemp("edge"))
    try:
        yield edge_mesh
    finally:
        denied = stop(edge_mesh.mesh, redis_server)
    assert not denied, f"Redis refused the services (ACL LOG): {denied}"
