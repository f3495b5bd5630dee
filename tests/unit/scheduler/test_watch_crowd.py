"""A crowd of open WatchJob streams on one scheduler costs it a few Redis connections, not one
each, and other callers' calls keep succeeding while they are open (issue 16, item 2)."""

from __future__ import annotations

import asyncio

import grpc

from sayit.common.v1 import job_pb2
from sayit.scheduler.v1 import scheduler_service_pb2 as pb
from tests.unit.scheduler.conftest import Harness

WATCHERS = 500
JOBS = 50
# The scheduler's clients (requests, 8 for streams' history, the watch hub, RQ), with room for
# a few opened on demand: far below one per stream.
MAX_CONNECTIONS = 16


def scheduler_connections(harness: Harness) -> int:
    name = f"sayit-scheduler-{harness.scheduler.instance}"
    clients = harness.redis.client_list()
    return sum(1 for c in clients if c.get("name") == name)


def connected_clients(harness: Harness) -> int:
    return int(harness.redis.info("clients")["connected_clients"])


async def kinds(call: grpc.aio.UnaryStreamCall) -> list[str]:
    """The kinds of the events left in a stream (read() as its first event was: grpc.aio
    refuses a mix of read() and iteration)."""
    found = []
    while (reply := await call.read()) is not grpc.aio.EOF:
        found.append(str(reply.event.WhichOneof("kind")))
    return found


async def test_500_watchers_hold_a_few_redis_connections_and_others_are_served(
    harness: Harness,
) -> None:
    # Queued jobs that nothing runs (no queue worker): their streams stay open.
    jobs = [await harness.submit(seconds=2.0, queue=True) for _ in range(JOBS)]
    before = connected_clients(harness)
    calls = [
        harness.stub.WatchJob(
            pb.WatchJobRequest(tenant="acme", job_id=jobs[i % JOBS].name.removeprefix("jobs/")),
            timeout=60,
        )
        for i in range(WATCHERS)
    ]
    # A stream is open once its `accepted` event has come.
    firsts = await asyncio.wait_for(asyncio.gather(*(call.read() for call in calls)), 60)
    assert {first.event.WhichOneof("kind") for first in firsts} == {"accepted"}

    # Another tenant's calls are answered while the crowd is open.
    other = await harness.submit(seconds=2.0, tenant="globex", queue=True)
    assert (await harness.get(other.name, "globex")).state == job_pb2.JOB_STATE_QUEUED
    assert (await harness.get(jobs[0].name)).state == job_pb2.JOB_STATE_QUEUED

    held = connected_clients(harness) - before
    assert held <= MAX_CONNECTIONS, f"{WATCHERS} open streams added {held} Redis connections"
    assert 0 < scheduler_connections(harness) <= MAX_CONNECTIONS

    # The one reader still serves every stream live: cancelling each job ends its streams.
    for job in jobs:
        await harness.stub.CancelJob(
            pb.CancelJobRequest(tenant="acme", job_id=job.name.removeprefix("jobs/")), timeout=10
        )
    rests = await asyncio.wait_for(asyncio.gather(*(kinds(call) for call in calls)), 60)
    assert all(rest == ["cancelled"] for rest in rests), {tuple(r) for r in rests}
    assert connected_clients(harness) - before <= MAX_CONNECTIONS
