"""`make load`'s accounting: refusals with RetryInfo are waited out, never counted as lost jobs;
cache hits are counted apart; every call's audio is new to the scheduler's fingerprint.

The gateway here is a small in-process SpeechService over real gRPC whose answers (rate-limit
refusals built by the services' own status code, jobs, NOT_FOUND) are scripted per test: the
logic under test is the load tool's, not the gateway's.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Iterator
from concurrent import futures

import grpc
import numpy as np
import pytest
import redis

from bench import mesh_probe
from bench.job_accounting import account_for_jobs
from bench.load import REFUSED, Results, outcome_of
from bench.retrying import retry_delay
from bench.unique_audio import MARK_BITS, UniqueAudio
from devsupport import evalset
from devsupport.mesh import RedisServer
from sayit.common.v1 import job_pb2
from sayit.common.v1 import transcription_pb2 as tpb
from sayit.speech.v1 import speech_service_pb2 as pb
from sayit.speech.v1 import speech_service_pb2_grpc as pb_grpc
from services.common.audio import decode
from services.common.errors import ResourceExhausted
from services.common.status import to_status
from services.scheduler.fingerprints import fingerprint

SUCCEEDED, FAILED = job_pb2.JOB_STATE_SUCCEEDED, job_pb2.JOB_STATE_FAILED


class ScriptedGateway(pb_grpc.SpeechServiceServicer):
    """Jobs by name; each GetJob/ListJobs is first refused `refusals` times (RESOURCE_EXHAUSTED,
    with RetryInfo unless `retry_info` is False), as a tenant over its rate is."""

    def __init__(
        self, jobs: dict[str, job_pb2.TranscriptionJob], refusals: int, retry_info: bool = True
    ) -> None:
        self.jobs = jobs
        self.refusals = refusals
        self.retry_info = retry_info
        self.calls: Counter[str] = Counter()

    def _throttle(self, what: str, context: grpc.ServicerContext) -> None:
        self.calls[what] += 1
        if self.calls[what] <= self.refusals:
            error = ResourceExhausted(
                "tenant 'load' is over its rate of 50 requests/s (bursts of 100); retry in 0.05 s",
                retry_after_seconds=0.05 if self.retry_info else None,
            )
            context.abort_with_status(to_status(error))

    def GetJob(self, request: pb.GetJobRequest, context: grpc.ServicerContext) -> pb.GetJobResponse:
        self._throttle(f"get {request.name}", context)
        if request.name not in self.jobs:
            context.abort(grpc.StatusCode.NOT_FOUND, f"{request.name} not found")
        return pb.GetJobResponse(job=self.jobs[request.name])

    def ListJobs(
        self, request: pb.ListJobsRequest, context: grpc.ServicerContext
    ) -> pb.ListJobsResponse:
        self._throttle("list", context)
        return pb.ListJobsResponse(jobs=list(self.jobs.values()))


def job(name: str, state: int, *, from_cache: bool = False) -> job_pb2.TranscriptionJob:
    made = job_pb2.TranscriptionJob(name=name, state=state)
    made.create_time.GetCurrentTime()
    if state == SUCCEEDED:
        made.transcript.CopyFrom(tpb.Transcript(text="hello", from_cache=from_cache))
    return made


@pytest.fixture
def serve() -> Iterator:
    servers: list[grpc.Server] = []

    def start(gateway: ScriptedGateway) -> pb_grpc.SpeechServiceStub:
        server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
        pb_grpc.add_SpeechServiceServicer_to_server(gateway, server)
        port = server.add_insecure_port("127.0.0.1:0")
        server.start()
        servers.append(server)
        return pb_grpc.SpeechServiceStub(grpc.insecure_channel(f"127.0.0.1:{port}"))

    yield start
    for server in servers:
        server.stop(None)


def test_jobs_checked_through_rate_limit_refusals_are_not_lost(serve) -> None:
    """The reported defect: every job SUCCEEDED, but its checks were refused by the tenant's
    rate limit and counted as lost."""
    jobs = {f"jobs/{n}": job(f"jobs/{n}", SUCCEEDED) for n in range(3)}
    gateway = ScriptedGateway(jobs, refusals=2)
    stub = serve(gateway)
    accounting = account_for_jobs(stub, [], set(jobs), since_ms=0, wait_seconds=5)
    assert accounting.lost == []
    assert accounting.unverified == []
    assert accounting.states == Counter({"SUCCEEDED": 3})
    assert accounting.waits == 2 + 3 * 2  # the listing's refusals and each job's
    assert gateway.calls["list"] == 3


def test_a_vanished_job_is_lost_and_a_failed_one_too(serve) -> None:
    jobs = {"jobs/ok": job("jobs/ok", SUCCEEDED)}
    failed = job("jobs/failed", FAILED)
    failed.error.message = "the transcriber crashed"
    jobs["jobs/failed"] = failed
    stub = serve(ScriptedGateway(jobs, refusals=1))
    accounting = account_for_jobs(stub, [], {"jobs/gone", *jobs}, since_ms=0, wait_seconds=5)
    assert sorted(accounting.lost) == [
        "jobs/failed: FAILED: the transcriber crashed",
        "jobs/gone: vanished (NOT_FOUND)",
    ]
    assert accounting.states == Counter({"SUCCEEDED": 1, "FAILED": 1})


def test_a_job_cancelled_after_its_call_failed_is_abandoned_not_lost(serve) -> None:
    """Its call failed (a deadline), so the run never got its name and counts that error; the
    mesh cancelled the job when its caller left. A job whose call was answered must not be
    cancelled by anyone else."""
    jobs = {
        "jobs/answered": job("jobs/answered", job_pb2.JOB_STATE_CANCELLED),
        "jobs/abandoned": job("jobs/abandoned", job_pb2.JOB_STATE_CANCELLED),
    }
    stub = serve(ScriptedGateway(jobs, refusals=0))
    accounting = account_for_jobs(stub, [], {"jobs/answered"}, since_ms=0, wait_seconds=5)
    assert accounting.abandoned == 1
    assert accounting.lost == ["jobs/answered: CANCELLED, not by this run"]


def test_a_refusal_without_retry_info_leaves_the_job_unverified_not_lost(serve) -> None:
    jobs = {"jobs/a": job("jobs/a", SUCCEEDED)}
    stub = serve(ScriptedGateway(jobs, refusals=100, retry_info=False))
    accounting = account_for_jobs(stub, [], set(jobs), since_ms=0, wait_seconds=5)
    assert accounting.lost == []
    assert accounting.unverified == ["ListJobs: RESOURCE_EXHAUSTED", "jobs/a: RESOURCE_EXHAUSTED"]


def test_cache_hits_are_counted_apart(serve) -> None:
    jobs = {
        "jobs/new": job("jobs/new", SUCCEEDED),
        "jobs/cached": job("jobs/cached", SUCCEEDED, from_cache=True),
    }
    stub = serve(ScriptedGateway(jobs, refusals=0))
    accounting = account_for_jobs(stub, [], set(jobs), since_ms=0, wait_seconds=5)
    assert accounting.cache_hits == 1
    assert accounting.states == Counter({"SUCCEEDED": 2})
    assert accounting.lost == []


def test_a_refused_call_is_not_an_error_and_waits_as_asked(serve) -> None:
    stub = serve(ScriptedGateway({}, refusals=1))
    with pytest.raises(grpc.RpcError) as refused:
        stub.ListJobs(pb.ListJobsRequest())
    assert retry_delay(refused.value) == pytest.approx(0.05)
    assert outcome_of(refused.value) == (REFUSED, pytest.approx(0.05))
    with pytest.raises(grpc.RpcError) as missing:
        serve(ScriptedGateway({}, refusals=0)).GetJob(pb.GetJobRequest(name="jobs/x"))
    assert retry_delay(missing.value) is None
    results = Results()
    results.record("Transcribe", 0.1, REFUSED)
    results.record("Transcribe", 0.2, outcome_of(missing.value)[0])
    results.record("Transcribe", 3.0, "OK", "jobs/a", from_cache=True)
    results.record("Transcribe", 3.0, "OK", "jobs/a")
    assert results.errors == 1  # NOT_FOUND; the refusal is the gateway doing its job
    assert results.cache_hits == 1
    assert results.shared == 1  # two calls answered with one job
    assert results.latencies["Transcribe"] == [3.0, 3.0]  # OK calls only


def test_every_call_sends_audio_new_to_the_fingerprint() -> None:
    """The reported defect: 22 clips repeated, so nearly every call was a cache hit."""
    clip = evalset.clips("en", max_seconds=12)[0]
    config = tpb.TranscriptionConfig(language_code="en")
    audio = UniqueAudio([clip])
    variants = [audio.variant(0) for _ in range(3)]
    another_run = UniqueAudio([clip]).variant(0)
    prints = {fingerprint(v.content, config) for v in [*variants, another_run]}
    assert len(prints) == 4
    assert fingerprint(clip.read(), config) not in prints
    # The speech is untouched: the clip's samples after a lead-in of at most 1 LSB.
    original = decode(clip.read(), clip.path.name)
    marked = decode(variants[1].content, variants[1].filename)
    assert len(marked) == len(original) + MARK_BITS
    assert np.max(np.abs(marked[:MARK_BITS])) <= 1.5 / 32767
    assert np.max(np.abs(marked[MARK_BITS:] - original)) <= 1.0 / 32767


def test_redis_connections_are_matched_to_the_process_holding_them(tmp_path) -> None:
    server = RedisServer(tmp_path / "redis").start()
    try:
        clients = [redis.Redis.from_url(server.url) for _ in range(3)]
        for n, client in enumerate(clients):
            client.client_setname(f"probe-{n}")
        seen = mesh_probe.redis_connections(server.url, {"this test": os.getpid()})
        assert seen.by_service["this test"] == 3  # the probe's own connection is its own
        assert seen.by_name["probe-0"] == 1
        assert seen.connected_clients == 4
    finally:
        server.stop()
