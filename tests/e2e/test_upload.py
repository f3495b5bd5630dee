"""UploadJob end to end (real gateway with API keys, scheduler, Redis, worker, transcriber and
model): a streamed file transcribes like an inline one; the key is checked before any message is
read; the size limit and a malformed stream are refused with messages a caller can act on; and
a 200 MiB file passes the gateway and the scheduler (planning included) without either holding
it whole."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest

from devsupport import audio, evalset, scoring
from devsupport.mesh import Mesh, running
from devsupport.processes import channel
from sayit.common.v1 import job_pb2
from sayit.speech.v1 import speech_service_pb2 as pb
from sayit.speech.v1 import speech_service_pb2_grpc as pb_grpc
from services.client import SayItClient
from services.gateway.keys import hash_key, new_key
from tests.support.long_audio_mesh import wait_planned
from tests.support.upload import MIB, PeakMemory, chunks, header, long_speech_wav, then_block

pytestmark = [pytest.mark.model, pytest.mark.redis]

KEY = new_key()
MAX_UPLOAD_BYTES = 210 * MIB
BIG_FILE_BYTES = 200 * MIB
# What a 200 MiB upload may add to the gateway's or the scheduler's resident memory.
GROWTH_BOUND_MIB = 150.0
ENDED = {job_pb2.JOB_STATE_SUCCEEDED, job_pb2.JOB_STATE_FAILED, job_pb2.JOB_STATE_CANCELLED}


@pytest.fixture(scope="module")
def mesh(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Mesh]:
    directory = tmp_path_factory.mktemp("upload")
    (directory / "spool").mkdir()
    keys_file = directory / "keys.toml"
    keys_file.write_text(
        f'[[keys]]\nname = "uploader"\nsha256 = "{hash_key(KEY)}"\ntenant = "acme"\n'
        'roles = ["all"]\n'
    )
    with running(
        directory,
        queue_transcribers=1,
        direct_slots=1,
        extra_env={
            "SAYIT_MAX_UPLOAD_BYTES": str(MAX_UPLOAD_BYTES),
            "SAYIT_CHUNK_TARGET_SECONDS": "60",
            "SAYIT_CHUNK_MIN_SECONDS": "30",
        },
        service_env={
            "gateway": {
                "SAYIT_API_KEYS_FILE": str(keys_file),
                "SAYIT_UPLOAD_DIR": str(directory / "spool"),
            }
        },
    ) as mesh:
        yield mesh


@pytest.fixture(scope="module")
def client(mesh: Mesh) -> Iterator[SayItClient]:
    with SayItClient(mesh.gateway_addr, api_key=KEY, upload_threshold_bytes=0) as client:
        yield client


@pytest.fixture(scope="module")
def stub(mesh: Mesh) -> pb_grpc.SpeechServiceStub:
    return pb_grpc.SpeechServiceStub(channel(mesh.gateway_addr, None))


def auth(key: str = KEY) -> list[tuple[str, str]]:
    return [("authorization", f"Bearer {key}")]


def upload_error(
    stub: pb_grpc.SpeechServiceStub,
    requests: Iterator[pb.UploadJobRequest],
    metadata: list[tuple[str, str]],
    timeout: float = 30,
) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as caught:
        stub.UploadJob(requests, metadata=metadata, timeout=timeout)
    error: grpc.RpcError = caught.value
    return error


def test_a_streamed_file_is_transcribed(client: SayItClient, mesh: Mesh) -> None:
    clip = evalset.clip("en_jfk")
    job = client.upload(clip.path, language="en")  # a FLAC, sent in 1 MiB chunks
    assert job.state == job_pb2.JOB_STATE_QUEUED
    assert job.routing == job_pb2.ROUTING_QUEUED
    transcript = client.wait(job.name)
    assert abs(transcript.audio_duration_seconds - clip.duration_seconds) < 0.1
    assert scoring.score(clip.reference, transcript.text, "en").rate < 0.1, transcript.text
    # The file's parts were dropped once the job was planned.
    assert not mesh.redis.client().exists(f"sayit:job:{job.name.removeprefix('jobs/')}:audio")


@pytest.mark.parametrize("key", ["", "wrong"])
def test_the_key_is_checked_before_any_message_is_read(
    stub: pb_grpc.SpeechServiceStub, key: str
) -> None:
    # The caller sends nothing at all: only a check made from metadata alone can answer.
    release = threading.Event()
    try:
        started = time.monotonic()
        error = upload_error(stub, then_block([], release), auth(key) if key else [], timeout=20)
    finally:
        release.set()
    assert error.code() == grpc.StatusCode.UNAUTHENTICATED
    assert ("no API key" if not key else "API key not recognised") in (error.details() or "")
    assert time.monotonic() - started < 10


def test_a_declared_size_over_the_limit_is_refused_before_the_audio(
    stub: pb_grpc.SpeechServiceStub,
) -> None:
    release = threading.Event()
    try:
        error = upload_error(
            stub, then_block([header(total_bytes=MAX_UPLOAD_BYTES + 1)], release), auth()
        )
    finally:
        release.set()
    assert error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    details = error.details() or ""
    assert "the limit is 210.0 MiB" in details and "SAYIT_MAX_UPLOAD_BYTES" in details


def test_chunks_over_the_limit_are_refused(stub: pb_grpc.SpeechServiceStub) -> None:
    block = b"\0" * (4 * MIB)
    over = MAX_UPLOAD_BYTES // len(block) + 1
    requests = [header(filename="big.wav")] + [pb.UploadJobRequest(audio_chunk=block)] * over
    error = upload_error(stub, iter(requests), auth())
    assert error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert "the limit is 210.0 MiB" in (error.details() or "")


def test_a_stream_without_a_header_first_or_with_two_is_refused(
    stub: pb_grpc.SpeechServiceStub,
) -> None:
    content = evalset.clip("en_jfk").read()
    no_header = upload_error(stub, chunks(content), auth())
    assert no_header.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "the first UploadJobRequest must be the header" in (no_header.details() or "")

    twice = upload_error(stub, iter([header(), *chunks(content[:1000]), header()]), auth())
    assert twice.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "the header was sent twice" in (twice.details() or "")

    empty = upload_error(stub, iter([header()]), auth())
    assert empty.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "the upload holds no audio" in (empty.details() or "")

    cut = upload_error(
        stub, iter([header(total_bytes=len(content)), *chunks(content[:-10])]), auth()
    )
    assert cut.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert f"total_bytes is {len(content)} but {len(content) - 10} bytes arrived" in (
        cut.details() or ""
    )


def spooled_files(mesh: Mesh) -> list[str]:
    """The gateway's open files in its spool directory (unnamed: they have no other trace)."""
    spool = str(mesh.directory / "spool")
    fds = Path(f"/proc/{mesh.processes['gateway'].pid}/fd")
    targets = []
    for fd in fds.iterdir():
        try:
            targets.append(os.readlink(fd))
        except OSError:
            continue  # closed meanwhile
    return [t for t in targets if t.startswith(spool)]


def test_a_spooled_file_is_gone_when_the_caller_goes_away(
    stub: pb_grpc.SpeechServiceStub, mesh: Mesh
) -> None:
    content = evalset.clip("en_jfk").read()
    release = threading.Event()
    call = stub.UploadJob.future(
        then_block([header(filename="jfk.flac"), *chunks(content[:50_000])], release),
        metadata=auth(),
        timeout=60,
    )
    try:
        deadline = time.monotonic() + 10
        while not spooled_files(mesh):  # the gateway is spooling the first chunks
            assert time.monotonic() < deadline, "the upload was never spooled"
            time.sleep(0.05)
        call.cancel()
        deadline = time.monotonic() + 10
        while spooled_files(mesh):
            assert time.monotonic() < deadline, f"still open: {spooled_files(mesh)}"
            time.sleep(0.05)
    finally:
        release.set()
    assert call.cancelled()
    assert not list((mesh.directory / "spool").iterdir())


def test_a_200_mib_upload_is_held_by_neither_the_gateway_nor_the_scheduler(
    client: SayItClient, mesh: Mesh, tmp_path: Path
) -> None:
    # Warm up first: planning a long file loads the VAD once, whatever the file's size.
    warm_up = client.upload(audio.korean_long(70.0)[0], language="ko")
    wait_planned(mesh, warm_up.name)
    client.cancel_job(warm_up.name)

    path = tmp_path / "long.wav"
    seconds = long_speech_wav(path, BIG_FILE_BYTES)  # 8 kHz mono: about 3.6 hours
    assert path.stat().st_size == BIG_FILE_BYTES
    pids = {name: mesh.processes[name].pid for name in ("gateway", "scheduler")}
    with PeakMemory(pids) as memory:
        job = client.upload(path, language="ko")
        pieces = wait_planned(mesh, job.name, timeout=600)
    client.cancel_job(job.name)
    assert job.state == job_pb2.JOB_STATE_QUEUED
    assert abs(job.audio_duration_seconds - seconds) < 1.0
    assert len(pieces) == pytest.approx(seconds / 60, abs=2)
    assert abs(sum(duration for _, duration in pieces) - seconds) < 1.0
    for name in pids:
        assert memory.growth(name) < GROWTH_BOUND_MIB, (name, memory.baseline, memory.peak)
