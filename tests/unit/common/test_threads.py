"""services.common.threads.ThreadedIterator: a blocking generator in a worker thread, consumed
with `async for`, stoppable between items."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest

from services.common.threads import ThreadedIterator

WAIT = 5.0  # generous upper bound for "the thread has stopped"; normally milliseconds


class Source:
    """A blocking generator that records what it was asked for and whether it was closed."""

    def __init__(self, count: int, *, delay: float = 0.0, fail_after: int | None = None) -> None:
        self.count = count
        self.delay = delay
        self.fail_after = fail_after
        self.produced = 0
        self.closed = False
        self.finished = False
        self.threads: set[str] = set()
        # Item `gate_at` waits for this event before it is produced.
        self.gate = threading.Event()
        self.gate_at: int | None = None

    def __call__(self) -> Iterator[int]:
        try:
            for i in range(self.count):
                self.threads.add(threading.current_thread().name)
                if self.fail_after is not None and i == self.fail_after:
                    raise ValueError(f"decoder broke at item {i}")
                if self.gate_at == i:
                    assert self.gate.wait(WAIT)
                if self.delay:
                    time.sleep(self.delay)
                self.produced += 1
                yield i
            self.finished = True
        finally:
            self.closed = True


class Counter:
    def __init__(self) -> None:
        self.calls = 0
        self.threads: list[str] = []

    def __call__(self) -> None:
        self.calls += 1
        self.threads.append(threading.current_thread().name)


@pytest.fixture
def executor() -> Iterator[ThreadPoolExecutor]:
    pool = ThreadPoolExecutor(2, thread_name_prefix="test-inference")
    yield pool
    pool.shutdown(wait=True, cancel_futures=True)


async def settle(threaded: ThreadedIterator[int]) -> None:
    """Wait for the worker thread to stop and for done-callbacks to run."""
    await asyncio.wait_for(asyncio.shield(threaded.future), WAIT)
    for _ in range(3):
        await asyncio.sleep(0)


async def test_yields_every_item_in_order(executor: ThreadPoolExecutor) -> None:
    source = Source(50)
    done = Counter()
    threaded = ThreadedIterator(executor, source, on_thread_done=done)
    assert [item async for item in threaded] == list(range(50))
    await settle(threaded)
    assert source.finished and source.closed
    assert source.threads and all(name.startswith("test-inference") for name in source.threads)
    assert done.calls == 1
    assert done.threads == [threading.current_thread().name]  # on the event loop's thread


async def test_non_generator_iterators(executor: ThreadPoolExecutor) -> None:
    threaded = ThreadedIterator(executor, lambda: iter(["a", "b", "c"]))
    assert [item async for item in threaded] == ["a", "b", "c"]


async def test_empty_iterator(executor: ThreadPoolExecutor) -> None:
    done = Counter()
    nothing: list[int] = []
    threaded = ThreadedIterator(executor, lambda: iter(nothing), on_thread_done=done)
    assert [item async for item in threaded] == []
    await settle(threaded)
    assert done.calls == 1


async def test_exception_propagates_after_earlier_items(executor: ThreadPoolExecutor) -> None:
    source = Source(10, fail_after=3)
    done = Counter()
    threaded = ThreadedIterator(executor, source, on_thread_done=done)
    received = []
    with pytest.raises(ValueError) as raised:
        async for item in threaded:
            received.append(item)
    assert str(raised.value) == "decoder broke at item 3"
    assert received == [0, 1, 2]
    await settle(threaded)
    assert source.closed and not source.finished
    assert done.calls == 1


async def test_break_stops_the_thread_and_closes_the_generator(
    executor: ThreadPoolExecutor,
) -> None:
    # The thread asks for an item only when the consumer does: after a break at item 1 it
    # never starts item 2, closes the generator and finishes.
    source = Source(1000)
    done = Counter()
    threaded = ThreadedIterator(executor, source, on_thread_done=done)
    consumed = []
    async for item in threaded:
        consumed.append(item)
        if len(consumed) == 2:
            break
    await settle(threaded)
    assert consumed == [0, 1]
    assert source.produced == len(consumed)
    assert source.closed  # the generator's finally ran
    assert not source.finished
    assert done.calls == 1


async def test_explicit_stop_before_any_demand(executor: ThreadPoolExecutor) -> None:
    source = Source(1000)
    done = Counter()
    threaded = ThreadedIterator(executor, source, on_thread_done=done)
    threaded.stop()
    await settle(threaded)
    assert source.produced == 0  # nobody asked for an item, so none was decoded
    assert not source.finished
    assert done.calls == 1


async def test_slow_consumer_does_not_let_the_thread_run_ahead(
    executor: ThreadPoolExecutor,
) -> None:
    source = Source(200)
    threaded = ThreadedIterator(executor, source)
    consumed = []
    async for item in threaded:
        consumed.append(item)
        if len(consumed) == 2:
            break
        await asyncio.sleep(0.05)  # e.g. a slow client holding up the stream
    await settle(threaded)
    assert consumed == [0, 1]
    assert source.closed
    assert source.produced <= len(consumed) + 1, f"produced {source.produced} items"


async def test_without_iteration_the_thread_waits_until_stopped(
    executor: ThreadPoolExecutor,
) -> None:
    source = Source(5)
    done = Counter()
    threaded = ThreadedIterator(executor, source, on_thread_done=done)
    await asyncio.sleep(0.05)
    assert source.produced == 0 and done.calls == 0  # no demand, no work
    threaded.stop()
    await settle(threaded)
    assert done.calls == 1 and source.produced == 0


async def test_on_thread_done_runs_once_after_an_error(
    executor: ThreadPoolExecutor,
) -> None:
    done = Counter()
    threaded = ThreadedIterator(executor, Source(5, fail_after=0), on_thread_done=done)
    with pytest.raises(ValueError, match="decoder broke at item 0"):
        async for _ in threaded:
            pass
    await settle(threaded)
    assert done.calls == 1


async def test_on_thread_done_is_optional(executor: ThreadPoolExecutor) -> None:
    threaded = ThreadedIterator(executor, Source(3))
    assert [item async for item in threaded] == [0, 1, 2]
    await settle(threaded)


async def test_thread_starts_at_construction(executor: ThreadPoolExecutor) -> None:
    started = threading.Event()

    def make() -> Iterator[int]:
        started.set()
        return iter([1])

    threaded = ThreadedIterator(executor, make)
    await asyncio.get_running_loop().run_in_executor(None, started.wait, WAIT)
    assert started.is_set()
    threaded.stop()
    await settle(threaded)


async def test_cancelled_consumer_stops_the_thread(executor: ThreadPoolExecutor) -> None:
    source = Source(1000, delay=0.002)
    done = Counter()
    threaded = ThreadedIterator(executor, source, on_thread_done=done)
    first = asyncio.Event()

    async def consume() -> None:
        async for _ in threaded:
            first.set()

    task = asyncio.create_task(consume())
    await asyncio.wait_for(first.wait(), WAIT)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await settle(threaded)
    assert source.closed and not source.finished
    assert source.produced < 1000
    assert done.calls == 1


async def test_make_iterator_failure_reaches_the_consumer(executor: ThreadPoolExecutor) -> None:
    def make() -> Iterator[int]:
        raise RuntimeError("could not start decoding")

    done = Counter()
    threaded = ThreadedIterator(executor, make, on_thread_done=done)

    async def consume() -> list[int]:
        return [item async for item in threaded]

    with pytest.raises(RuntimeError, match="could not start decoding"):
        await asyncio.wait_for(consume(), 0.5)
    await settle(threaded)  # the error went to the consumer; the thread ended cleanly
    assert done.calls == 1
