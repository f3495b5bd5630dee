"""A crowd of open WatchJob streams, for `make crowd` (bench/crowd.py).

Each watcher keeps one API key (round-robin) and follows one of that key's held jobs; it counts
as *open* once its first event arrived. A refusal carrying RetryInfo (the rate limit, or a cap
on streams per tenant or per server) is counted by its kind and tried again
after the delay asked; any other error ends the watcher. When a held job ends, its watchers
move to the key's next held job still open, so the crowd stays as large as the jobs allow.
"""

from __future__ import annotations

import asyncio
import re
from collections import Counter
from dataclasses import dataclass, field

import grpc

from bench.retrying import RETRYABLE, retry_delay
from sayit.speech.v1 import speech_service_pb2 as pb
from sayit.speech.v1 import speech_service_pb2_grpc as pb_grpc


@dataclass(frozen=True)
class HeldJob:
    name: str
    caller: int  # index of the API key (stub) that created it


@dataclass
class CrowdState:
    open_now: int = 0
    opened_ever: int = 0
    moved: int = 0  # watchers whose job ended and who moved to another
    refusals: Counter[str] = field(default_factory=Counter)  # kind of refusal -> answers
    refused_watchers: set[int] = field(default_factory=set)
    errors: Counter[str] = field(default_factory=Counter)  # kind of error -> watchers ended
    ended: set[str] = field(default_factory=set)  # held jobs seen to end


def refusal_kind(code: grpc.StatusCode, message: str) -> str:
    """An answer's code and message with numbers blanked, so like answers group together."""
    return f"{code.name}: {re.sub(r'[0-9][0-9.]*', '#', message)[:90]}"


class Crowd:
    def __init__(
        self,
        stubs: list[tuple[pb_grpc.SpeechServiceStub, list[tuple[str, str]]]],
        held: list[HeldJob],
        keys: int,
    ) -> None:
        # stubs[c * keys + k]: connection c of API key k
        self._stubs = stubs
        self._keys = keys
        self._connections = len(stubs) // keys
        self.held = held
        self.state = CrowdState()
        self._tasks: list[asyncio.Task[None]] = []

    def open(self, count: int) -> None:
        """Start `count` watchers (call within the running loop)."""
        for n in range(count):
            self._tasks.append(asyncio.create_task(self._watch(n)))

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    def _next_job(self, number: int) -> HeldJob | None:
        """The watcher's next open job among its own API key's: watchers keep their key, so
        the crowd stays spread over the tenants as their jobs end (and no tenant's stream cap
        is hit by watchers piling onto the last jobs open)."""
        own = [job for job in self.held if job.caller == number % self._keys]
        start = number // self._keys
        for step in range(len(own)):
            job = own[(start + step) % len(own)]
            if job.name not in self.state.ended:
                return job
        return None

    async def _watch(self, number: int) -> None:
        state = self.state
        job = self._next_job(number)
        while job is not None:
            connection = number % self._connections
            stub, metadata = self._stubs[connection * self._keys + job.caller]
            is_open = False
            try:
                call = stub.WatchJob(pb.WatchJobRequest(name=job.name), metadata=metadata)
                async for _event in call:
                    if not is_open:
                        is_open = True
                        state.open_now += 1
                        state.opened_ever += 1
                state.ended.add(job.name)  # the stream ends when the job ends
                state.moved += 1
                job = self._next_job(number)
            except grpc.aio.AioRpcError as error:
                delay = retry_delay(error) if error.code() in RETRYABLE else None
                if delay is None:
                    state.errors[refusal_kind(error.code(), error.details() or "")] += 1
                    return
                state.refusals[refusal_kind(error.code(), error.details() or "")] += 1
                state.refused_watchers.add(number)
                await asyncio.sleep(max(0.05, delay))
            finally:
                if is_open:
                    state.open_now -= 1
