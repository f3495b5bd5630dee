"""Waiting for a job on the edge mesh, where every call carries a tenant's API key."""

from __future__ import annotations

import time

from sayit.common.v1 import job_pb2
from sayit.speech.v1 import speech_service_pb2 as pb
from sayit.speech.v1 import speech_service_pb2_grpc as pb_grpc

ENDED = {job_pb2.JOB_STATE_SUCCEEDED, job_pb2.JOB_STATE_FAILED, job_pb2.JOB_STATE_CANCELLED}


def wait_job(
    stub: pb_grpc.SpeechServiceStub, name: str, meta: list, states: set[int], timeout: float = 120
) -> job_pb2.TranscriptionJob:
    deadline = time.monotonic() + timeout
    while True:
        job = stub.GetJob(pb.GetJobRequest(name=name), metadata=meta, timeout=10).job
        if job.state in states or time.monotonic() > deadline:
            return job
        time.sleep(0.2)
