"""The real transcriber process with the real bundled model takes a slot before it decodes: with
its one slot busy and no room in line, a call is refused at once, its audio never decoded."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import grpc
import numpy as np
import pytest
from grpc_status import rpc_status

from devsupport import evalset, processes
from services.common import audio
from services.common.errors import retry_delay_seconds
from tests.support.transcriber_calls import request, stub

pytestmark = pytest.mark.model


@pytest.fixture
def no_line(run_dir: Path) -> Iterator[processes.ServiceProcess]:
    service = processes.transcriber(
        run_dir,
        "transcriber-no-line",
        SAYIT_TRANSCRIBER_SLOTS="1",
        SAYIT_TRANSCRIBER_WAITING="0",
        SAYIT_CPU_THREADS="1",
    ).start()
    service.wait_serving()
    yield service
    service.stop()


def _refusal(addr: str, content: bytes) -> tuple[grpc.RpcError, float]:
    started = time.monotonic()
    with pytest.raises(grpc.RpcError) as caught:
        list(stub(addr).TranscribeStream(request(content, "en"), timeout=60))
    return caught.value, time.monotonic() - started


def test_a_call_that_finds_no_slot_is_refused_before_its_audio_is_decoded(
    no_line: processes.ServiceProcess,
) -> None:
    addr = no_line.addr or ""
    long_clip = evalset.clip("en_long_ljspeech_LJ001").read()
    holder = stub(addr).TranscribeStream(request(long_clip, "en"), timeout=300)
    first = threading.Event()

    def consume() -> None:
        try:
            for response in holder:
                if response.HasField("segment"):
                    first.set()
        except grpc.RpcError:
            pass

    threading.Thread(target=consume, daemon=True).start()
    try:
        assert first.wait(120)
        # Audio that cannot be decoded: refused for the busy slot, not for the audio, which
        # proves it was never decoded (today it is decoded first: INVALID_ARGUMENT).
        error, _ = _refusal(addr, b"this is not audio at all" * 100)
        assert error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED, error.details()
        assert "slots of this transcriber are busy" in (error.details() or "")
        status = rpc_status.from_call(error)
        assert status is not None and retry_delay_seconds(status.details) == 1.0
        # A long file (the clip eight times over, ~31 min of FLAC) is refused too.
        samples = audio.decode(long_clip, "clip.flac", 4 * 3600.0)
        long_file = audio.encode_flac(np.tile(samples, 8))
        error, refused_in = _refusal(addr, long_file)
        assert error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        started = time.monotonic()
        audio.decode(long_file, "clip.flac", 4 * 3600.0)
        decode_seconds = time.monotonic() - started
        # A figure, not an assertion: the refusal includes sending 17 MB over loopback.
        print(f"\nrefused in {refused_in * 1000:.0f} ms; decoding takes {decode_seconds:.2f} s")
    finally:
        holder.cancel()
