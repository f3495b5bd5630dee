"""Submissions that repeat earlier ones, answered without transcribing again.

In order:
1. An idempotency key the tenant used before names that job (whatever its state); the same key
   with different audio or config is refused.
2. The tenant's result cache: the same audio under the same effective config and model
   transcribed before (until the cache TTL) gives a new job of the caller's own, SUCCEEDED at
   once, whose transcript says `from_cache`.
3. The same submission still queued or running for the same tenant: the caller gets that job.
Caches and in-flight jobs are never shared across tenants. Races between identical
submissions are settled by SET NX claims in Redis: one creates the job, the others attach.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

from sayit.common.v1 import transcription_pb2
from sayit.scheduler.v1 import scheduler_service_pb2 as pb
from services.common import logs
from services.common.errors import InvalidArgument, Unavailable
from services.jobs import changes, records, schema
from services.jobs.claims import Claims
from services.jobs.store import JobStore
from services.scheduler import fingerprints, instant_jobs

log = logs.get_logger("sayit.scheduler")

IDEMPOTENT, CACHED, ATTACHED = "idempotency_key", "result_cache", "in_flight"
# A claimed job's record appears within milliseconds; wait this long for it at most.
_RECORD_WAIT_SECONDS = 5.0


@dataclass(frozen=True)
class Repeat:
    job_id: str
    how: str  # IDEMPOTENT, CACHED or ATTACHED


@dataclass(frozen=True)
class RepeatPolicy:
    # 0: no result cache and no in-flight sharing (idempotency keys still apply).
    cache_ttl_seconds: int
    job_ttl_seconds: int
    in_flight_ttl_seconds: int


class Repeats:
    def __init__(
        self, store: JobStore, claims: Claims, policy: RepeatPolicy, instance: str
    ) -> None:
        self._store = store
        self._claims = claims
        self._policy = policy
        self._instance = instance

    async def find(
        self,
        job_id: str,
        tenant: str,
        request: pb.SubmitJobRequest,
        fingerprint: str,
        duration: float,
    ) -> Repeat | None:
        """The job answering this submission if it repeats another; None to create `job_id`
        (which then holds the submission's in-flight claim)."""
        keys = self._store.keys
        idempotency_key = ""
        if request.idempotency_key:
            idempotency_key = keys.idempotency(
                tenant, fingerprints.key_digest(request.idempotency_key)
            )
            held = await self._claims.claim(
                idempotency_key, f"{job_id} {fingerprint}", self._policy.job_ttl_seconds
            )
            if held is not None:
                other, _, other_fingerprint = held.partition(" ")
                if other_fingerprint != fingerprint:
                    raise InvalidArgument(
                        "idempotency_key was already used for a different request (other audio "
                        "or config); use a new key for a new request",
                        field="idempotency_key",
                    )
                if await self._wait_for_record(other):
                    return Repeat(other, IDEMPOTENT)
                # Its job never came to be (the scheduler accepting it failed): take the key.
                if not await self._claims.replace(
                    idempotency_key, held, f"{job_id} {fingerprint}", self._policy.job_ttl_seconds
                ):
                    raise Unavailable(
                        "the request with this idempotency key is still being accepted; "
                        "retry shortly"
                    )
        if self._policy.cache_ttl_seconds <= 0:
            return None
        cached = await self._store.cached_result(tenant, fingerprint)
        if cached is not None:
            await self._create_cached(job_id, tenant, request, fingerprint, duration, cached)
            return Repeat(job_id, CACHED)
        shared = await self._attach_in_flight(job_id, tenant, fingerprint)
        if shared is None:
            return None
        if idempotency_key:
            await self._claims.point(
                idempotency_key, f"{shared} {fingerprint}", self._policy.job_ttl_seconds
            )
        return Repeat(shared, ATTACHED)

    async def release(
        self, job_id: str, tenant: str, request: pb.SubmitJobRequest, fingerprint: str
    ) -> None:
        """Give up the claims `find` made for `job_id` when the job could not be created, so
        a retry of the same submission is not sent to a job that does not exist."""
        keys = self._store.keys
        claims = [(keys.in_flight(tenant, fingerprint), job_id)]
        if request.idempotency_key:
            key = keys.idempotency(tenant, fingerprints.key_digest(request.idempotency_key))
            claims.append((key, f"{job_id} {fingerprint}"))
        for key, value in claims:
            await self._claims.release(key, value)

    async def _attach_in_flight(self, job_id: str, tenant: str, fingerprint: str) -> str | None:
        key = self._store.keys.in_flight(tenant, fingerprint)
        ttl = self._policy.in_flight_ttl_seconds
        for _ in range(3):
            held = await self._claims.claim(key, job_id, ttl)
            if held is None:
                return None  # ours: the caller creates the job
            if await self._wait_for_record(held):
                record = await self._store.raw_record(held)
                if (
                    records.state_of(record) in schema.ACTIVE
                    and records.tenant_of(record) == tenant
                ):
                    await self._store.attach(held)
                    return held
            # The job it names has ended (or never came to be): the claim is ours now.
            if await self._claims.replace(key, held, job_id, ttl):
                return None
        return None

    async def _wait_for_record(self, job_id: str) -> bool:
        deadline = time.monotonic() + _RECORD_WAIT_SECONDS
        while not await self._store.raw_record(job_id):
            if time.monotonic() > deadline:
                return False
            await asyncio.sleep(0.05)
        return True

    async def _create_cached(
        self,
        job_id: str,
        tenant: str,
        request: pb.SubmitJobRequest,
        fingerprint: str,
        duration: float,
        transcript: transcription_pb2.Transcript,
    ) -> None:
        transcript.from_cache = True
        transcript.processing_seconds = 0.0
        # Answered at once, like a direct job; the transcript says where it came from.
        await instant_jobs.create(
            self._store, job_id, tenant, request, fingerprint, duration, self._instance
        )
        await self._store.apply(job_id, changes.completed_change(job_id, transcript))
