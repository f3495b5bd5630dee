"""SchedulerService's answers: tenants, malformed requests, cancelling, listing, watching."""

from __future__ import annotations

import grpc
import pytest

from sayit.common.v1 import job_pb2
from sayit.scheduler.v1 import scheduler_service_pb2 as pb
from tests.unit.scheduler.conftest import Harness


async def error_of(call: object) -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await call  # type: ignore[misc]
    return raised.value


async def test_another_tenants_job_does_not_exist(harness: Harness) -> None:
    job = await harness.submit(wait=True)
    job_id = job.name.removeprefix("jobs/")
    for call in (
        harness.stub.GetJob(pb.GetJobRequest(tenant="globex", job_id=job_id)),
        harness.stub.CancelJob(pb.CancelJobRequest(tenant="globex", job_id=job_id)),
    ):
        error = await error_of(call)
        assert error.code() == grpc.StatusCode.NOT_FOUND
        assert error.details() == f"job jobs/{job_id} not found (it may have expired)"
    watch = harness.stub.WatchJob(pb.WatchJobRequest(tenant="globex", job_id=job_id))
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        async for _ in watch:
            pass
    assert raised.value.code() == grpc.StatusCode.NOT_FOUND
    assert (await harness.get(job.name)).state == job_pb2.JOB_STATE_SUCCEEDED


async def test_a_malformed_job_id_is_invalid(harness: Harness) -> None:
    error = await error_of(harness.stub.GetJob(pb.GetJobRequest(tenant="acme", job_id="42")))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert error.details() == "job_id must be 32 hex characters; got '42'"


async def test_a_submission_without_the_probed_duration_is_refused(harness: Harness) -> None:
    error = await error_of(harness.submit(seconds=0.0))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "audio_duration_seconds must be the audio's probed duration" in error.details()
    assert harness.fake.calls == []


async def test_cancelling_an_ended_job_is_a_failed_precondition(harness: Harness) -> None:
    job = await harness.submit(wait=True)
    request = pb.CancelJobRequest(tenant="acme", job_id=job.name.removeprefix("jobs/"))
    error = await error_of(harness.stub.CancelJob(request))
    assert error.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "has already ended (succeeded)" in error.details()


async def test_jobs_are_listed_newest_first_in_pages(harness: Harness) -> None:
    names = [(await harness.submit(wait=True)).name for _ in range(3)]
    await harness.submit(wait=True, tenant="globex")
    first = await harness.stub.ListJobs(pb.ListJobsRequest(tenant="acme", page_size=2))
    assert [j.name for j in first.jobs] == names[::-1][:2] and first.next_page_token
    rest = await harness.stub.ListJobs(
        pb.ListJobsRequest(tenant="acme", page_size=2, page_token=first.next_page_token)
    )
    assert [j.name for j in rest.jobs] == names[:1] and not rest.next_page_token


async def test_watching_from_a_sequence_sends_only_later_events(harness: Harness) -> None:
    job = await harness.submit(wait=True)
    job_id = job.name.removeprefix("jobs/")
    everything = [
        r.event
        async for r in harness.stub.WatchJob(pb.WatchJobRequest(tenant="acme", job_id=job_id))
    ]
    assert [e.sequence for e in everything] == list(range(1, len(everything) + 1))
    assert all(e.name == job.name for e in everything)
    later = [
        r.event
        async for r in harness.stub.WatchJob(
            pb.WatchJobRequest(tenant="acme", job_id=job_id, after_sequence=3)
        )
    ]
    assert later == everything[3:]
    negative = harness.stub.WatchJob(
        pb.WatchJobRequest(tenant="acme", job_id=job_id, after_sequence=-1)
    )
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        async for _ in negative:
            pass
    assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
