"""The gateway's Prometheus metrics (RPC counts and latencies come from the interceptor)."""

from __future__ import annotations

from prometheus_client import Counter

from sayit.common.v1 import job_pb2

CACHE_HITS = Counter(
    "sayit_cache_hits_total",
    "Submissions answered with a stored transcript (from_cache) instead of transcribing.",
)

QUOTA_STORE_ERRORS = Counter(
    "sayit_gateway_quota_store_errors_total",
    "Quota checks that failed because the quota store (Redis) could not answer, by what the "
    "gateway did with the request: refused (UNAVAILABLE) or let_through (SAYIT_QUOTA_FAIL_OPEN).",
    ["outcome"],
)
REFUSED, LET_THROUGH = "refused", "let_through"
# Both series exist from the start, so a dashboard's rate() sees the first error.
for _outcome in (REFUSED, LET_THROUGH):
    QUOTA_STORE_ERRORS.labels(outcome=_outcome)


def submitted(job: job_pb2.TranscriptionJob) -> None:
    if job.HasField("transcript") and job.transcript.from_cache:
        CACHE_HITS.inc()
