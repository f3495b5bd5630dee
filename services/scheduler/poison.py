"""Refusing audio that crashed the engine (services.jobs.poison counts the crashes).

The rule: a crash is counted when a transcriber's process died while it worked on the audio (a
direct call cut off after the transcriber had accepted it; a queued chunk whose work horse or
transcriber died on every attempt counts once per attempt). A graceful stop (a deploy, a drain
past its grace period) ends calls with a status of the transcriber's own and is not counted.
Once the audio has crashed `crashes` times and its last crash is younger than `ttl_seconds`,
a submission of the same audio under the same settings gets a job that is FAILED at once with
INTERNAL: nothing is sent to a transcriber. The ban ends `ttl_seconds` after the last crash, so
audio that was merely in flight when a transcriber died for another reason (a neighbour's OOM
kill, a node going away) can be sent again later, and one that crashes again is banned again.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass

import grpc

from sayit.scheduler.v1 import scheduler_service_pb2 as pb
from services.common import logs
from services.common.errors import status_code_number
from services.jobs import changes, schema
from services.jobs.poison import Crashes
from services.jobs.store import JobStore
from services.scheduler import instant_jobs

log = logs.get_logger("sayit.scheduler")

CRASHED_MESSAGE = "this audio crashed the engine; it was not retried"


@dataclass(frozen=True)
class PoisonPolicy:
    ttl_seconds: int  # 0: never refuse
    crashes: int

    def refuses(self, crashes: Crashes, now_ms: int) -> bool:
        return (
            self.ttl_seconds > 0
            and crashes.count >= self.crashes
            and now_ms - crashes.last_ms < self.ttl_seconds * 1000
        )


def refused_message(crashes: Crashes, policy: PoisonPolicy) -> str:
    until = datetime.datetime.fromtimestamp(
        crashes.last_ms / 1000 + policy.ttl_seconds, tz=datetime.UTC
    )
    return (
        f"{CRASHED_MESSAGE} (the same audio with the same settings is refused until "
        f"{until:%Y-%m-%d %H:%M} UTC; if it is valid audio, report it with this job's name)"
    )


class PoisonGuard:
    def __init__(self, store: JobStore, policy: PoisonPolicy, instance: str) -> None:
        self._store = store
        self._policy = policy
        self._instance = instance

    async def refuse(
        self,
        job_id: str,
        tenant: str,
        request: pb.SubmitJobRequest,
        fingerprint: str,
        duration: float,
    ) -> bool:
        """If this audio crashed the engine recently, record `job_id` as a job FAILED at once
        (INTERNAL, saying so) and return True; else False."""
        if self._policy.ttl_seconds <= 0:
            return False
        crashes = await self._store.poison.crashes(fingerprint)
        if not self._policy.refuses(crashes, schema.now_ms()):
            return False
        await instant_jobs.create(
            self._store, job_id, tenant, request, fingerprint, duration, self._instance
        )
        message = refused_message(crashes, self._policy)
        code = status_code_number(grpc.StatusCode.INTERNAL)
        await self._store.apply(job_id, changes.failed_change(job_id, code, message))
        await self._store.untrack(job_id)
        log.warning("poison_audio_refused", crashes=crashes.count, tenant=tenant)
        return True
