"""The gateway's Prometheus metrics (RPC counts and latencies come from the interceptor)."""

from __future__ import annotations

from prometheus_client import Counter

from sayit.common.v1 import job_pb2

CACHE_HITS = Counter(
    "sayit_cache_hits_total",
    "Submissions answered with a stored transcript (from_cache) instead of transcribing.",
)


def submitted(job: job_pb2.TranscriptionJob) -> None:
    if job.HasField("transcript") and job.transcript.from_cache:
        CACHE_HITS.inc()
