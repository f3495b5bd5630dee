"""A tenant's jobs, newest first, in pages whose token is the (score, id) of the last job given,
so jobs created meanwhile never shift a page.

JOB_VIEW_BASIC (the default) lists jobs without their transcripts' text and segments; a
JOB_VIEW_FULL page ends early, with a token for the rest, once the next job would take the
response past `max_bytes`.
"""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any

from sayit.common.v1 import job_pb2
from services.common import names
from services.common.errors import InvalidArgument
from services.jobs import records
from services.jobs.errors import redis_errors
from services.jobs.schema import Keys, now_ms

MAX_PAGE_SIZE = 100
DEFAULT_PAGE_SIZE = 20
# Room for the response's own framing and the page token.
_RESPONSE_OVERHEAD_BYTES = 1024
_VIEWS = frozenset(job_pb2.JobView.values())


async def page(
    client: Any,
    keys: Keys,
    ttl_seconds: int,
    tenant: str,
    page_size: int,
    page_token: str,
    *,
    view: int = job_pb2.JOB_VIEW_BASIC,
    max_bytes: int | None = None,
) -> tuple[list[job_pb2.TranscriptionJob], str]:
    if page_size < 0 or page_size > MAX_PAGE_SIZE:
        raise InvalidArgument(
            f"page_size must be between 0 and {MAX_PAGE_SIZE}; got {page_size}",
            field="page_size",
        )
    if view not in _VIEWS:
        raise InvalidArgument(
            f"view must be JOB_VIEW_BASIC (1) or JOB_VIEW_FULL (2); got {view}", field="view"
        )
    full = view == job_pb2.JOB_VIEW_FULL
    budget = (max_bytes - _RESPONSE_OVERHEAD_BYTES) if max_bytes and full else None
    used = 0
    last: tuple[float, str] | None = None
    size = page_size or DEFAULT_PAGE_SIZE
    start_score, after_id = _decode_token(page_token)
    index = keys.tenant_jobs(tenant)
    jobs: list[job_pb2.TranscriptionJob] = []
    with redis_errors():
        await client.zremrangebyscore(index, "-inf", now_ms() - ttl_seconds * 1000)
        entries: Any = await client.zrevrangebyscore(
            index, start_score, "-inf", start=0, num=size * 2 + 10, withscores=True
        )
        for raw_id, score in entries:
            job_id = raw_id.decode()
            if after_id and score == start_score and job_id >= after_id:
                continue  # the previous page ended at this (score, id)
            record = await client.hgetall(keys.record(job_id))
            if not record:
                await client.zrem(index, job_id)
                continue
            job = records.job_message(job_id, record)
            if not full:
                records.summarize(job)
            if budget is not None:
                # Each job is a length-delimited field: its bytes plus a few of framing.
                used += job.ByteSize() + 8
                if jobs and used > budget and last is not None:
                    return jobs, _encode_token(*last)
            jobs.append(job)
            last = (score, job_id)
            if len(jobs) == size:
                return jobs, _encode_token(score, job_id)
    return jobs, ""


def _encode_token(score: float, job_id: str) -> str:
    raw = json.dumps([score, job_id]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode_token(token: str) -> tuple[float | str, str]:
    if not token:
        return "+inf", ""
    try:
        padded = token + "=" * (-len(token) % 4)
        score, job_id = json.loads(base64.urlsafe_b64decode(padded))
        if not isinstance(score, int | float) or not names.is_job_id(job_id):
            raise ValueError
        return float(score), str(job_id)
    except (ValueError, TypeError, binascii.Error, json.JSONDecodeError):
        raise InvalidArgument(
            "page_token is not a token returned by ListJobs; pass next_page_token unchanged",
            field="page_token",
        ) from None
