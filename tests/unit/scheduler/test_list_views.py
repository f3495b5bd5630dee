"""ListJobs views (AIP-157): BASIC (the default) lists jobs without their transcripts' text and
segments, so a page of 100 long jobs stays small; FULL lists whole jobs and ends a page early,
with a token for the rest, once the next job would pass the message limit."""

from __future__ import annotations

import grpc
import pytest

from sayit.common.v1 import job_pb2
from sayit.scheduler.v1 import scheduler_service_pb2 as pb
from tests.unit.scheduler.conftest import Harness

MIB = 1 << 20
# Ten segments of 6,000 characters (18 KB in UTF-8 each): one job's transcript is ~360 KB
# (text plus segments), so 100 of them are ~36 MB, far past any message limit.
LONG = tuple(f"{n}: " + "가나다" * 2000 for n in range(10))
JOBS = 100


@pytest.fixture
def settings(settings: dict[str, str]) -> dict[str, str]:
    # A 2 MiB message limit, so that a FULL page visibly ends early.
    return {**settings, "SAYIT_MAX_REQUEST_BYTES": str(2 * MIB)}


async def long_jobs(harness: Harness, count: int) -> list[str]:
    harness.fake.script.texts = LONG
    names = []
    for _ in range(count):
        job = await harness.submit(wait=True)
        assert job.state == job_pb2.JOB_STATE_SUCCEEDED
        names.append(job.name)
    return names[::-1]  # newest first


async def test_a_basic_page_of_100_long_jobs_fits(harness: Harness) -> None:
    names = await long_jobs(harness, JOBS)
    reply = await harness.stub.ListJobs(
        pb.ListJobsRequest(tenant="acme", page_size=JOBS), timeout=10
    )
    assert [j.name for j in reply.jobs] == names
    assert reply.ByteSize() < 100 * 1024  # about 1 KB a job, whatever the transcript's length
    for job in reply.jobs:
        assert job.state == job_pb2.JOB_STATE_SUCCEEDED
        assert job.transcript.text == "" and len(job.transcript.segments) == 0
        # What a list shows is kept.
        assert job.transcript.language_code == "ko"
        assert job.transcript.audio_duration_seconds == pytest.approx(8.0)
        assert job.audio_duration_seconds == pytest.approx(8.0)
        assert job.filename == "clip.wav"
    # BASIC is also what an explicit JOB_VIEW_BASIC gives.
    explicit = await harness.stub.ListJobs(
        pb.ListJobsRequest(tenant="acme", page_size=JOBS, view=job_pb2.JOB_VIEW_BASIC),
        timeout=10,
    )
    assert explicit == reply


async def test_a_full_page_ends_before_the_message_limit_and_the_rest_follows(
    harness: Harness,
) -> None:
    names = await long_jobs(harness, 12)
    seen: list[job_pb2.TranscriptionJob] = []
    pages = []
    token = ""
    while True:
        reply = await harness.stub.ListJobs(
            pb.ListJobsRequest(
                tenant="acme", page_size=JOBS, page_token=token, view=job_pb2.JOB_VIEW_FULL
            ),
            timeout=10,
        )
        assert reply.ByteSize() <= 2 * MIB
        pages.append(len(reply.jobs))
        seen.extend(reply.jobs)
        token = reply.next_page_token
        if not token:
            break
    # ~360 KB a job in 2 MiB: five a page, and every job exactly once, newest first.
    assert pages == [5, 5, 2]
    assert [j.name for j in seen] == names
    assert all(j.transcript.text.startswith("0: 가나다") for j in seen)
    assert all(len(j.transcript.segments) == len(LONG) for j in seen)


async def test_an_unknown_view_is_refused(harness: Harness) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await harness.stub.ListJobs(pb.ListJobsRequest(tenant="acme", view=7), timeout=5)  # type: ignore[arg-type]
    assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert raised.value.details() == "view must be JOB_VIEW_BASIC (1) or JOB_VIEW_FULL (2); got 7"
