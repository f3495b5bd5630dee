"""A direct job's error is public (GetJob, WatchJob, ListJobs show it): when its transcriber
call ends with gRPC's own words (a reset connection, with an address), the job says what
happened in words a caller can act on; a SayIt service's own message is kept."""

from __future__ import annotations

import grpc

from sayit.common.v1 import job_pb2
from services.scheduler.poison import CRASHED_MESSAGE
from tests.support.addresses import leaks
from tests.unit.scheduler.conftest import Harness

RAW = "Connection reset by peer ipv4:10.0.0.9:50053 (subchannel 0x7f3a)"


async def test_grpc_own_words_do_not_reach_the_jobs_error(harness: Harness) -> None:
    harness.fake.script.fail_after = (grpc.StatusCode.UNAVAILABLE, RAW)
    harness.fake.script.raw_status = True
    job = await harness.submit(wait=True)
    assert job.state == job_pb2.JOB_STATE_FAILED
    # Cut off once the transcriber was at work: its process died on this audio
    # (services.scheduler.poison).
    assert job.error.code == grpc.StatusCode.INTERNAL.value[0]
    assert job.error.message == CRASHED_MESSAGE
    stored = await harness.get(job.name)
    assert stored.error.message == job.error.message and leaks(stored.error.message) == []


async def test_a_sayit_services_message_is_kept(harness: Harness) -> None:
    harness.fake.script.fail_after = (grpc.StatusCode.INVALID_ARGUMENT, "the audio is corrupt")
    job = await harness.submit(wait=True)
    assert job.state == job_pb2.JOB_STATE_FAILED
    assert job.error.message == "the audio is corrupt"
