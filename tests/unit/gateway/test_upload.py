"""The gateway's UploadJob stream checks and spooling (services.gateway.upload), and probing the
spooled file from disk (services.common.audio.probe on an open file) on real clips."""

from __future__ import annotations

import tempfile
from collections.abc import AsyncIterator

import pytest

from devsupport import evalset
from sayit.speech.v1 import speech_service_pb2 as pb
from services.common import audio as audio_files
from services.common.errors import BadAudio, InvalidArgument, ResourceExhausted
from services.gateway import upload

MIB = 1024 * 1024


async def stream(*messages: pb.UploadJobRequest) -> AsyncIterator[pb.UploadJobRequest]:
    for message in messages:
        yield message


def chunk(data: bytes) -> pb.UploadJobRequest:
    return pb.UploadJobRequest(audio_chunk=data)


HEADER = pb.UploadJobRequest(header=pb.UploadJobHeader(filename="a.flac"))


async def test_the_chunks_are_spooled_in_order() -> None:
    requests = stream(HEADER, chunk(b"abc"), chunk(b"def"))
    assert (await upload.read_header(requests)).filename == "a.flac"
    with tempfile.TemporaryFile() as file:
        assert await upload.spool(requests, file, 100, declared=6) == 6
        file.seek(0)
        assert file.read() == b"abcdef"


@pytest.mark.parametrize(
    ("messages", "declared", "error", "message"),
    [
        ((HEADER,), 0, InvalidArgument, "the header was sent twice"),
        ((), 0, InvalidArgument, "the upload holds no audio"),
        (
            (chunk(b"x" * (4 * MIB + 1)),),
            0,
            InvalidArgument,
            r"an audio_chunk is 4\.0 MiB \(4194305 bytes\); the limit is 4\.0 MiB "
            r"\(4194304 bytes\) per message",
        ),
        (
            (chunk(b"x" * 60), chunk(b"x" * 41)),
            0,
            ResourceExhausted,
            r"the limit is 0\.0 MiB \(100 bytes\)",
        ),
        ((chunk(b"x" * 10),), 11, InvalidArgument, "total_bytes is 11 but 10 bytes arrived"),
    ],
)
async def test_a_malformed_stream_is_refused(
    messages: tuple[pb.UploadJobRequest, ...], declared: int, error: type, message: str
) -> None:
    with tempfile.TemporaryFile() as file, pytest.raises(error, match=message):
        await upload.spool(stream(*messages), file, 100, declared)


async def test_the_header_must_come_first() -> None:
    with pytest.raises(InvalidArgument, match="the first UploadJobRequest must be the header"):
        await upload.read_header(stream(chunk(b"x")))
    with pytest.raises(InvalidArgument, match="the first UploadJobRequest must be the header"):
        await upload.read_header(stream())


def test_a_declared_size_over_the_limit_is_refused() -> None:
    header = pb.UploadJobHeader(total_bytes=2 * MIB + 1)
    with pytest.raises(ResourceExhausted, match=r"the limit is 2\.0 MiB .*SAYIT_MAX_UPLOAD_BYTES"):
        upload.check_header(header, "base", 2 * MIB)
    with pytest.raises(InvalidArgument, match="total_bytes must be the file's size or 0"):
        upload.check_header(pb.UploadJobHeader(total_bytes=-1), "base", 2 * MIB)


@pytest.mark.parametrize("clip_id", ["en_jfk", "en_pv_leopard_test"])
def test_a_spooled_file_probes_as_its_bytes_do(clip_id: str) -> None:
    content = evalset.clip(clip_id).read()
    with tempfile.TemporaryFile() as file:
        file.write(content)
        assert audio_files.probe(file, "clip.flac") == audio_files.probe(content, "clip.flac")


def test_a_spooled_file_that_is_not_audio_is_refused() -> None:
    with tempfile.TemporaryFile() as file:
        file.write(b"not audio at all" * 100)
        with pytest.raises(BadAudio, match="not a recognised audio format"):
            audio_files.probe(file, "x.bin")
