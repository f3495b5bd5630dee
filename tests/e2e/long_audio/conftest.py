"""One mesh for the long-audio tests (this package): a private Redis with AOF, three queue
workers, the real model. Package-scoped, so its modules share one mesh as the single module
they came from did; here it stands in for tests/e2e/conftest.py's session mesh. The modules'
names keep that module's order (chunking, crash recovery, durability, the result cache)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from devsupport.mesh import Mesh, RedisServer, stop
from sayit.speech.v1 import speech_service_pb2_grpc as pb_grpc
from tests.support.long_audio_mesh import CHUNK_TARGET_SECONDS, QUEUE_PAIRS, RETRIES


@pytest.fixture(scope="package")
def mesh(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Mesh]:
    directory: Path = tmp_path_factory.mktemp("long-audio")
    redis_server = RedisServer(directory / "redis", appendonly=True).start()
    mesh = Mesh(
        directory,
        redis_server,
        queue_transcribers=len(QUEUE_PAIRS),
        direct_slots=1,
        extra_env={
            "SAYIT_CHUNK_TARGET_SECONDS": str(CHUNK_TARGET_SECONDS),
            "SAYIT_CHUNK_MIN_SECONDS": "90",
            "SAYIT_JOB_RETRIES": str(RETRIES),
            "SAYIT_RESULT_CACHE_TTL_SECONDS": "3600",
        },
    )
    mesh.build().start()
    try:
        yield mesh
    finally:
        denied = stop(mesh, redis_server)
    assert not denied, f"Redis refused the services (ACL LOG): {denied}"


@pytest.fixture(scope="package")
def speech(mesh: Mesh) -> pb_grpc.SpeechServiceStub:
    return pb_grpc.SpeechServiceStub(
        mesh.gateway_channel(**{"grpc.max_send_message_length": 64 << 20})
    )
