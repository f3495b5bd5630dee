"""The decodes of all live sessions of a process, run most urgent first.

Without this, every session's decode went straight to CTranslate2, which runs them first come
first served: with four real-time sessions on two cores, a final result waited behind the
other sessions' interim decodes, and the median endpoint latency tripled. Here a few worker
threads (as many as the model runs decodes at once) take the queued decodes in order of
priority (finals of ended utterances, then speculative finals, then interims), first come first
served within a priority, so no session starves: each session has at most one decode queued or
running, and a decode waits at most for one decode of each other session ahead of it. A queued
decode that is no longer wanted (its utterance ended, or speech resumed after a pause) is
cancelled before it starts.
"""

from __future__ import annotations

import heapq
import itertools
import threading
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any

FINAL = 0
SPECULATIVE = 1
INTERIM = 2


class DecodeQueue:
    def __init__(self, workers: int, name: str = "live") -> None:
        self._heap: list[tuple[int, int, Future[Any], Callable[[], Any]]] = []
        self._order = itertools.count()
        self._ready = threading.Condition()
        self._closed = False
        self.running = 0
        self._threads = [
            threading.Thread(target=self._work, name=f"{name}-{i}", daemon=True)
            for i in range(workers)
        ]
        for thread in self._threads:
            thread.start()

    @property
    def queued(self) -> int:
        with self._ready:
            return sum(1 for *_, future, _ in self._heap if not future.done())

    def submit(self, priority: int, function: Callable[..., Any], *args: Any) -> Future[Any]:
        future: Future[Any] = Future()
        with self._ready:
            if self._closed:
                raise RuntimeError("the decode queue is closed")
            heapq.heappush(
                self._heap, (priority, next(self._order), future, lambda: function(*args))
            )
            self._ready.notify()
        return future

    def close(self) -> None:
        with self._ready:
            self._closed = True
            for *_, future, _ in self._heap:
                future.cancel()
            self._heap.clear()
            self._ready.notify_all()

    def _work(self) -> None:
        while True:
            with self._ready:
                while not self._heap and not self._closed:
                    self._ready.wait()
                if self._closed:
                    return
                _, _, future, call = heapq.heappop(self._heap)
                if not future.set_running_or_notify_cancel():
                    continue  # cancelled while queued
                self.running += 1
            try:
                result = call()
            except BaseException as error:
                future.set_exception(error)
            else:
                future.set_result(result)
            finally:
                with self._ready:
                    self.running -= 1
