"""The gateway's probe stops when its caller goes away: a cancelled RPC sets the probe's cancel
flag (freeing one of the gateway's few probe threads at once), and a deadline that passes while
probing ends the probe with DEADLINE_EXCEEDED. The probe runs in a real thread pool, as in the
gateway."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import grpc
import pytest

from services.common import audio as audio_files
from services.common.errors import DeadlineExceeded
from services.gateway.config import load_config
from services.gateway.servicer import SpeechServicer
from tests.support import lying_audio as lie
from tests.support.encode import silent_flac


class Context:
    """The one thing the probe asks of the RPC's context: the time left."""

    def __init__(self, remaining: float | None) -> None:
        self._remaining = remaining

    def time_remaining(self) -> float | None:
        return self._remaining


@pytest.fixture
def executor() -> Iterator[ThreadPoolExecutor]:
    pool = ThreadPoolExecutor(1, thread_name_prefix="probe")
    yield pool
    pool.shutdown(wait=False, cancel_futures=True)


def servicer(executor: ThreadPoolExecutor, **environ: str) -> SpeechServicer:
    channel = grpc.aio.insecure_channel("127.0.0.1:9")  # never called: the probe comes first
    return SpeechServicer(load_config({"SAYIT_AUTH": "off", **environ}), channel, None, executor)


async def test_a_cancelled_call_sets_its_probes_cancel_flag(
    executor: ThreadPoolExecutor, monkeypatch: pytest.MonkeyPatch
) -> None:
    started, seen = threading.Event(), threading.Event()

    def probe(*args: Any, cancel: threading.Event, **kwargs: Any) -> audio_files.AudioInfo:
        # Stands in for a long measuring pass: runs until its flag is set.
        started.set()
        if cancel.wait(timeout=10):
            seen.set()
        raise audio_files.Cancelled

    monkeypatch.setattr(audio_files, "probe", probe)
    task = asyncio.create_task(
        servicer(executor)._probe_seconds(b"x", "", Context(None))  # type: ignore[arg-type]
    )
    await asyncio.get_running_loop().run_in_executor(None, started.wait, 5)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert await asyncio.get_running_loop().run_in_executor(None, seen.wait, 5)


async def test_a_deadline_that_passes_while_probing_stops_the_probe(
    executor: ThreadPoolExecutor,
) -> None:
    # Two hours declaring no length, under a raised limit: the probe would measure them all.
    content = lie.flac_total_samples(silent_flac(2 * 3600), 0)
    gateway = servicer(executor, SAYIT_MAX_AUDIO_SECONDS="100000")
    with pytest.raises(DeadlineExceeded, match=r"^the deadline passed while the audio was probed$"):
        await gateway._probe_seconds(content, "", Context(0.0))  # type: ignore[arg-type]
    # With time to spare the same file is measured.
    seconds = await gateway._probe_seconds(content, "", Context(60.0))  # type: ignore[arg-type]
    assert seconds == pytest.approx(2 * 3600, abs=1)
