"""UploadJob at the scheduler (services.scheduler.uploads): the file is stored as it arrives, in
parts of at most 4 MiB, the job is queued like CreateJob's, an idempotent repeat keeps no copy,
and a malformed stream stores nothing."""

from __future__ import annotations

from collections.abc import AsyncIterator

import grpc
import numpy as np
import pytest

from sayit.common.v1 import job_pb2
from sayit.common.v1 import transcription_pb2 as tpb
from sayit.scheduler.v1 import scheduler_service_pb2 as pb
from services.common.audio import SAMPLE_RATE, encode_wav
from services.common.effective_config import effective_config
from services.jobs.store import AUDIO_PART_BYTES
from tests.unit.scheduler.conftest import Harness, until

MIB = 1024 * 1024


def header(seconds: float = 32.0, idempotency_key: str = "") -> pb.UploadJobRequest:
    return pb.UploadJobRequest(
        header=pb.UploadJobHeader(
            tenant="acme",
            filename="long.wav",
            config=effective_config(tpb.TranscriptionConfig(language_code="ko"), "base"),
            idempotency_key=idempotency_key,
            audio_duration_seconds=seconds,
        )
    )


async def stream(
    first: list[pb.UploadJobRequest], content: bytes, size: int = MIB
) -> AsyncIterator[pb.UploadJobRequest]:
    for message in first:
        yield message
    for start in range(0, len(content), size):
        yield pb.UploadJobRequest(audio_chunk=content[start : start + size])


def audio_keys(harness: Harness) -> list[bytes]:
    return [k for k in harness.redis.keys(f"{harness.keys.prefix}:job:*:audio")]  # type: ignore[union-attr]


async def test_an_upload_is_stored_in_parts_and_queued(harness: Harness) -> None:
    # 32 s of 16 kHz WAV is 1 MiB; padded past 4 MiB with a trailing chunk the WAV ignores.
    content = encode_wav(np.zeros(32 * SAMPLE_RATE, dtype=np.float32))
    content += b"\0" * (AUDIO_PART_BYTES + 1000)
    harness.scheduler.planner.start = lambda *args: None  # type: ignore[method-assign]
    reply = await harness.stub.UploadJob(stream([header()], content), timeout=10)
    job = reply.job
    assert job.state == job_pb2.JOB_STATE_QUEUED and job.routing == job_pb2.ROUTING_QUEUED
    key = harness.keys.audio(job.name.removeprefix("jobs/"))
    parts = harness.redis.lrange(key, 0, -1)
    assert [len(p) for p in parts] == [AUDIO_PART_BYTES, len(content) - AUDIO_PART_BYTES]
    assert b"".join(parts) == content
    assert harness.record(job.name)[b"filename"] == b"long.wav"


async def test_an_idempotent_repeat_keeps_no_second_copy(harness: Harness) -> None:
    content = encode_wav(np.zeros(32 * SAMPLE_RATE, dtype=np.float32))
    first = await harness.stub.UploadJob(stream([header(idempotency_key="k")], content), timeout=10)
    await until(lambda: harness.record(first.job.name).get(b"planned") == b"1", within=30)
    again = await harness.stub.UploadJob(stream([header(idempotency_key="k")], content), timeout=10)
    assert again.job.name == first.job.name
    assert audio_keys(harness) == []


@pytest.mark.parametrize(
    ("first", "content", "message"),
    [
        ([], b"RIFF", "the first UploadJobRequest must be the header"),
        ([header(), header()], b"RIFF", "the header was sent twice"),
        ([header()], b"", "the upload holds no audio"),
        ([header(seconds=0)], b"RIFF", "audio_duration_seconds must be the audio's probed"),
    ],
)
async def test_a_malformed_stream_stores_nothing(
    harness: Harness, first: list[pb.UploadJobRequest], content: bytes, message: str
) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await harness.stub.UploadJob(stream(first, content), timeout=10)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert message in (caught.value.details() or "")
    assert audio_keys(harness) == []
