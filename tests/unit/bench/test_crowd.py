"""`make crowd`'s watchers: refusals with RetryInfo (a stream cap, the rate limit) are counted
apart and tried again as asked; watchers of a job that ends move on to one still open.

The gateway is a small in-process SpeechService over real gRPC whose WatchJob answers are
scripted: the logic under test is the crowd's bookkeeping, not the gateway's.
"""

from __future__ import annotations

import asyncio
import threading
from collections import Counter
from collections.abc import Iterator

import grpc
import pytest

from bench.crowd_watchers import Crowd, HeldJob, refusal_kind
from sayit.common.v1 import event_pb2
from sayit.speech.v1 import speech_service_pb2 as pb
from sayit.speech.v1 import speech_service_pb2_grpc as pb_grpc
from services.common.errors import ResourceExhausted
from services.common.status import to_status

CAP_MESSAGE = "tenant 'crowd1' has 5 open streams, its limit; retry in 0.05 s"


class CappedWatches(pb_grpc.SpeechServiceServicer):
    """WatchJob refuses the first `refusals` calls as a stream cap would, then sends one event
    and stays open until the job's end is set."""

    def __init__(self, refusals: int) -> None:
        self.refusals = refusals
        self.calls: Counter[str] = Counter()
        self.ends = {"jobs/a": threading.Event(), "jobs/b": threading.Event()}
        self._lock = threading.Lock()

    def WatchJob(self, request: pb.WatchJobRequest, context: grpc.ServicerContext) -> Iterator:
        with self._lock:
            self.calls["all"] += 1
            refuse = self.calls["all"] <= self.refusals
        if refuse:
            error = ResourceExhausted(CAP_MESSAGE, retry_after_seconds=0.05)
            context.abort_with_status(to_status(error))
        yield pb.WatchJobResponse(event=event_pb2.JobEvent(sequence=1))
        while not self.ends[request.name].wait(0.05):
            if not context.is_active():
                return


@pytest.fixture
def gateway() -> Iterator[tuple[CappedWatches, str]]:
    from concurrent import futures

    servicer = CappedWatches(refusals=5)
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=64))
    pb_grpc.add_SpeechServiceServicer_to_server(servicer, server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    yield servicer, f"127.0.0.1:{port}"
    for end in servicer.ends.values():
        end.set()
    server.stop(None)


async def _until(condition, seconds: float = 10.0) -> None:  # type: ignore[no-untyped-def]
    for _ in range(int(seconds / 0.05)):
        if condition():
            return
        await asyncio.sleep(0.05)
    raise AssertionError("condition not met in time")


def test_refused_watchers_are_counted_apart_and_open_later(gateway) -> None:
    servicer, addr = gateway

    async def scenario() -> None:
        channel = grpc.aio.insecure_channel(addr)
        stubs = [(pb_grpc.SpeechServiceStub(channel), [])]
        crowd = Crowd(stubs, [HeldJob("jobs/a", 0), HeldJob("jobs/b", 0)], keys=1)
        crowd.open(20)
        await _until(lambda: crowd.state.open_now == 20)
        assert len(crowd.state.refused_watchers) == 5
        assert crowd.state.refusals == Counter(
            {refusal_kind(grpc.StatusCode.RESOURCE_EXHAUSTED, CAP_MESSAGE): 5}
        )
        assert crowd.state.errors == Counter()
        servicer.ends["jobs/a"].set()  # its watchers move to jobs/b
        await _until(lambda: crowd.state.moved == 10 and crowd.state.open_now == 20)
        assert crowd.state.ended == {"jobs/a"}
        await crowd.close()
        assert crowd.state.open_now == 0
        await channel.close()

    asyncio.run(scenario())


def test_refusals_group_by_kind_whatever_their_numbers() -> None:
    code = grpc.StatusCode.RESOURCE_EXHAUSTED
    first = refusal_kind(code, "tenant 'crowd1' is over its rate of 50 requests/s; retry in 0.12 s")
    second = refusal_kind(code, "tenant 'crowd1' is over its rate of 50 requests/s; retry in 1.5 s")
    assert first == second
    assert first.startswith("RESOURCE_EXHAUSTED: tenant 'crowd#' is over its rate of #")
