"""Running blocking generators (inference) off the event loop, stoppable between items."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from concurrent.futures import Executor
from typing import Any, Generic, TypeVar

T = TypeVar("T")

_ITEM, _ERROR, _END = "item", "error", "end"


class ThreadedIterator(Generic[T]):
    """The items of a blocking iterator that runs in `executor`, as an async iterator.

    The thread starts at construction, so `on_thread_done` (run on the event loop once the
    thread has really stopped, i.e. when its CPU is free again) is guaranteed to run even if
    nobody ever iterates. The thread asks the iterator for an item only when the consumer asks
    for one, so it never works ahead of a slow consumer. `stop()` tells the thread not to ask
    for another item; it then closes the iterator. Stopping happens automatically when
    iteration ends early.
    """

    def __init__(
        self,
        executor: Executor,
        make_iterator: Callable[[], Iterator[T]],
        on_thread_done: Callable[[], None] | None = None,
    ) -> None:
        self._loop = asyncio.get_running_loop()
        self._queue: asyncio.Queue[tuple[str, Any]] = asyncio.Queue()
        self._stop = threading.Event()
        # One permit per item the consumer has asked for.
        self._demand = threading.Semaphore(0)
        self._make_iterator = make_iterator
        self.future = self._loop.run_in_executor(executor, self._pump)
        if on_thread_done is not None:
            self.future.add_done_callback(lambda _: on_thread_done())

    def stop(self) -> None:
        self._stop.set()
        self._demand.release()  # wake the thread if it is waiting for demand

    async def stopped(self) -> None:
        """Wait until the thread has really stopped and `on_thread_done` has run.

        Done callbacks run in the order they were added, so ours (added at construction)
        has run by the time this await resumes.
        """
        with contextlib.suppress(BaseException):
            await asyncio.shield(self.future)

    def _put(self, kind: str, value: Any) -> None:
        # RuntimeError: the loop has closed, so nobody is listening any more.
        with contextlib.suppress(RuntimeError):
            self._loop.call_soon_threadsafe(self._queue.put_nowait, (kind, value))

    def _pump(self) -> None:
        iterator: Iterator[T] | None = None
        try:
            iterator = self._make_iterator()
            while True:
                self._demand.acquire()
                if self._stop.is_set():
                    break
                try:
                    item = next(iterator)
                except StopIteration:
                    break
                self._put(_ITEM, item)
        except BaseException as error:
            self._put(_ERROR, error)
            return
        finally:
            close = getattr(iterator, "close", None)
            if close is not None:
                close()
        self._put(_END, None)

    async def __aiter__(self) -> AsyncIterator[T]:
        try:
            while True:
                self._demand.release()
                kind, value = await self._queue.get()
                if kind == _END:
                    return
                if kind == _ERROR:
                    raise value
                yield value
        finally:
            self.stop()
