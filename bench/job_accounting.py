"""After a load run: every job it created, and whether it really ended well.

A job is *lost* when it vanished (NOT_FOUND), never reached an end state, failed, or was
cancelled although its call was answered and this check did not cancel it (a job whose call
failed, a deadline say, is cancelled by the mesh when its caller leaves: the failed call is
the error, the job is *abandoned*). A job is *unverified* when the checks kept failing
for another reason (the mesh could not say). Rate-limit answers with RetryInfo are waited out,
never counted against a job. Cache hits (the transcript says `from_cache`) are counted apart:
they cost no transcription.
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field

import grpc

from bench.retrying import honouring_retry_info
from sayit.common.v1 import job_pb2
from sayit.speech.v1 import speech_service_pb2 as pb
from sayit.speech.v1 import speech_service_pb2_grpc as pb_grpc

ENDED = {job_pb2.JOB_STATE_SUCCEEDED, job_pb2.JOB_STATE_FAILED, job_pb2.JOB_STATE_CANCELLED}
STATES = {v: k.removeprefix("JOB_STATE_") for k, v in job_pb2.JobState.items()}
# How long one check may keep waiting on RetryInfo before the job counts as unverified.
CHECK_PATIENCE_SECONDS = 60.0


@dataclass
class Accounting:
    states: Counter[str] = field(default_factory=Counter)
    lost: list[str] = field(default_factory=list)  # "jobs/..: why"
    unverified: list[str] = field(default_factory=list)
    cache_hits: int = 0
    cancelled_at_end: int = 0  # still waiting when the run ended; cancelled by the check
    # Found only by listing (its call failed, so the run never got its name) and CANCELLED: the
    # mesh cancels a waiting job whose caller gave up. The failed call counts as an error.
    abandoned: int = 0
    waits: int = 0  # checks that waited on RetryInfo

    @property
    def jobs(self) -> int:
        return sum(self.states.values())


class JobChecker:
    def __init__(
        self,
        stub: pb_grpc.SpeechServiceStub,
        metadata: list[tuple[str, str]],
        patience_seconds: float = CHECK_PATIENCE_SECONDS,
    ) -> None:
        self._stub = stub
        self._metadata = metadata
        self._patience = patience_seconds
        self.waits = 0

    def _waited(self, _error: grpc.RpcError, _delay: float) -> None:
        self.waits += 1

    def get(self, name: str) -> job_pb2.TranscriptionJob:
        return honouring_retry_info(
            lambda: (
                self._stub.GetJob(
                    pb.GetJobRequest(name=name), metadata=self._metadata, timeout=30
                ).job
            ),
            patience_seconds=self._patience,
            on_retry=self._waited,
        )

    def cancel(self, name: str) -> None:
        honouring_retry_info(
            lambda: self._stub.CancelJob(
                pb.CancelJobRequest(name=name), metadata=self._metadata, timeout=30
            ),
            patience_seconds=self._patience,
            on_retry=self._waited,
        )

    def listed_since(self, since_ms: int) -> set[str]:
        """Names of the caller's jobs created at or after `since_ms` (newest first, paged)."""
        names: set[str] = set()
        token = ""
        while True:
            request = pb.ListJobsRequest(page_size=100, page_token=token)
            page = honouring_retry_info(
                lambda r=request: self._stub.ListJobs(r, metadata=self._metadata, timeout=30),
                patience_seconds=self._patience,
                on_retry=self._waited,
            )
            fresh = [j for j in page.jobs if j.create_time.ToMilliseconds() >= since_ms]
            names |= {j.name for j in fresh}
            token = page.next_page_token
            if not token or len(fresh) < len(page.jobs):
                return names


def account_for_jobs(
    stub: pb_grpc.SpeechServiceStub,
    metadata: list[tuple[str, str]],
    names: set[str],
    since_ms: int,
    wait_seconds: float,
    patience_seconds: float = CHECK_PATIENCE_SECONDS,
) -> Accounting:
    """Every job this run created, found by name and by listing: the unfinished are cancelled
    and must then end (within `wait_seconds` in all)."""
    checker = JobChecker(stub, metadata, patience_seconds)
    result = Accounting()
    try:
        everything = names | checker.listed_since(since_ms)
    except grpc.RpcError as error:
        result.unverified.append(f"ListJobs: {error.code().name}")
        everything = set(names)
    cancelled: set[str] = set()
    checkable: list[str] = []
    for name in sorted(everything):
        try:
            job = checker.get(name)
        except grpc.RpcError as error:
            _file_failed_check(result, name, error)
            continue
        checkable.append(name)
        if job.state in ENDED:
            continue
        try:
            checker.cancel(name)
            cancelled.add(name)
        except grpc.RpcError as error:
            if error.code() != grpc.StatusCode.FAILED_PRECONDITION:  # it ended meanwhile
                result.unverified.append(f"{name}: cancel {error.code().name}")
    deadline = time.monotonic() + wait_seconds
    for name in checkable:
        try:
            job = checker.get(name)
            while job.state not in ENDED and time.monotonic() < deadline:
                time.sleep(0.5)
                job = checker.get(name)
        except grpc.RpcError as error:
            _file_failed_check(result, name, error)
            continue
        _file_job(result, job, cancelled_by_us=name in cancelled, answered=name in names)
    result.waits = checker.waits
    return result


def _file_failed_check(result: Accounting, name: str, error: grpc.RpcError) -> None:
    if error.code() == grpc.StatusCode.NOT_FOUND:
        result.lost.append(f"{name}: vanished (NOT_FOUND)")
    else:
        result.unverified.append(f"{name}: {error.code().name}")


def _file_job(
    result: Accounting, job: job_pb2.TranscriptionJob, *, cancelled_by_us: bool, answered: bool
) -> None:
    state = STATES.get(job.state, "?")
    result.states[state] += 1
    if job.state == job_pb2.JOB_STATE_SUCCEEDED:
        result.cache_hits += job.transcript.from_cache
    elif job.state == job_pb2.JOB_STATE_CANCELLED and cancelled_by_us:
        result.cancelled_at_end += 1
    elif job.state == job_pb2.JOB_STATE_CANCELLED and not answered:
        result.abandoned += 1
    elif job.state == job_pb2.JOB_STATE_FAILED:
        result.lost.append(f"{job.name}: FAILED: {job.error.message}")
    elif job.state == job_pb2.JOB_STATE_CANCELLED:
        result.lost.append(f"{job.name}: CANCELLED, not by this run")
    else:
        result.lost.append(f"{job.name}: still {state}")
