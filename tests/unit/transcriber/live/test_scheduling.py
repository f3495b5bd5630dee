"""The live decode queue: most urgent first, first come first served within a priority, and a
queued decode can be cancelled before it starts."""

from __future__ import annotations

import threading
import time
from concurrent.futures import CancelledError, Future
from typing import Any

import pytest

from services.transcriber.live.scheduling import FINAL, INTERIM, SPECULATIVE, DecodeQueue


def started(queue: DecodeQueue, future: Future[Any]) -> Future[Any]:
    """Waits until the worker has taken `future` on."""
    deadline = time.monotonic() + 5
    while not future.running() and time.monotonic() < deadline:
        time.sleep(0.001)
    assert future.running()
    return future


def test_queued_decodes_run_most_urgent_first_then_in_arrival_order() -> None:
    queue = DecodeQueue(1)
    gate = threading.Event()
    ran: list[str] = []
    try:
        blocker = started(queue, queue.submit(INTERIM, gate.wait, 5))  # the worker is busy
        futures = [
            queue.submit(INTERIM, ran.append, "interim a"),
            queue.submit(SPECULATIVE, ran.append, "speculative"),
            queue.submit(FINAL, ran.append, "final a"),
            queue.submit(INTERIM, ran.append, "interim b"),
            queue.submit(FINAL, ran.append, "final b"),
        ]
        assert queue.queued == 5
        gate.set()
        blocker.result(5)
        for future in futures:
            future.result(5)
        assert ran == ["final a", "final b", "speculative", "interim a", "interim b"]
    finally:
        queue.close()


def test_a_decode_cancelled_while_queued_never_runs() -> None:
    queue = DecodeQueue(1)
    gate = threading.Event()
    ran: list[str] = []
    try:
        blocker = started(queue, queue.submit(FINAL, gate.wait, 5))
        dropped = queue.submit(INTERIM, ran.append, "dropped")
        kept = queue.submit(INTERIM, ran.append, "kept")
        assert dropped.cancel()
        gate.set()
        blocker.result(5)
        kept.result(5)
        assert ran == ["kept"]
        with pytest.raises(CancelledError):
            dropped.result()
    finally:
        queue.close()


def test_errors_reach_the_caller_and_the_worker_goes_on() -> None:
    queue = DecodeQueue(1)

    def fail() -> None:
        raise ValueError("bad audio")

    try:
        with pytest.raises(ValueError, match="bad audio"):
            queue.submit(FINAL, fail).result(5)
        assert queue.submit(FINAL, lambda: 42).result(5) == 42
    finally:
        queue.close()


def test_close_cancels_what_is_still_queued() -> None:
    queue = DecodeQueue(1)
    gate = threading.Event()
    blocker = started(queue, queue.submit(FINAL, gate.wait, 5))
    waiting = queue.submit(FINAL, lambda: None)
    queue.close()
    gate.set()
    blocker.result(5)
    assert waiting.cancelled()
    with pytest.raises(RuntimeError):
        queue.submit(FINAL, lambda: None)
