"""A private mesh for bench sections: Redis, scheduler, one direct transcriber laid out like
the raw-engine baseline, queue transcribers, gateway (devsupport.mesh, result cache off)."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from devsupport import mesh
from devsupport.mesh import Mesh
from sayit.speech.v1 import speech_service_pb2_grpc as pb_grpc

MAX_MESSAGE = 256 << 20


@contextmanager
def running(
    *,
    direct_slots: int,
    direct_threads: int,
    queue_transcribers: int = 1,
    queue_threads: int = 1,
    env: dict[str, str] | None = None,
    pki: bool = True,
) -> Iterator[Mesh]:
    directory = Path(tempfile.mkdtemp(prefix="sayit-bench-"))
    try:
        with mesh.running(
            directory,
            queue_transcribers=queue_transcribers,
            direct_slots=direct_slots,
            direct_threads=direct_threads,
            queue_threads=queue_threads,
            extra_env=env or {},
            pki=pki,
        ) as started:
            yield started
    finally:
        shutil.rmtree(directory, ignore_errors=True)


def stub(mesh: Mesh) -> pb_grpc.SpeechServiceStub:
    """A stub on the mesh's gateway, sending its dev key with every call."""
    channel = mesh.gateway_channel(
        **{
            "grpc.max_send_message_length": MAX_MESSAGE,
            "grpc.max_receive_message_length": MAX_MESSAGE,
        }
    )
    return pb_grpc.SpeechServiceStub(channel)
