"""The raw engine in a spawned process of its own: a fresh interpreter with this one's
environment (so huge pages alike), for baselines that must not inherit this process's speed.

The same decoding runs up to 10% faster or slower in one process than in another for as long as
the process lives, so the throughput and mesh-overhead sections pair each mesh measurement with
an engine in a new process, as the mesh's own processes are new.
"""

from __future__ import annotations

import multiprocessing
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from typing import Any, TypeVar

from bench import raw_engine
from services.transcriber.engine import Engine

T = TypeVar("T")

_engine: Engine | None = None  # in the engine's process


class EngineProcess:
    def __init__(self, threads: int, slots: int = 1) -> None:
        self._pool = ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn"))
        self._pool.submit(_load, threads, slots).result()

    def run(self, work: Callable[..., T], *args: Any) -> T:
        """`work(engine, *args)` in the engine's process (`work` a module-level function)."""
        return self._pool.submit(_with_engine, work, *args).result()

    def __enter__(self) -> EngineProcess:
        return self

    def __exit__(self, *_: object) -> None:
        self._pool.shutdown()


def _load(threads: int, slots: int) -> None:
    global _engine
    _engine = raw_engine.engine(threads, slots)


def _with_engine(work: Callable[..., T], *args: Any) -> T:
    assert _engine is not None
    return work(_engine, *args)
