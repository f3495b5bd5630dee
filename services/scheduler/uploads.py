"""UploadJob at the scheduler: a queued submission whose audio arrives in a stream.

The chunks go to the job store as they come, in parts of at most a few MiB, while their
fingerprint is computed; then the submission is admitted like any other (repeats, queue, plan).
The file is never held whole: planning reads the parts back one at a time.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

from sayit.common.v1 import audio_pb2, job_pb2
from sayit.scheduler.v1 import scheduler_service_pb2 as pb
from services.common import logs, names
from services.common.errors import InvalidArgument
from services.jobs.store import AUDIO_PART_BYTES, JobStore
from services.scheduler import fingerprints
from services.scheduler.submission import Staged, Submissions

DEFAULT_TENANT = "default"


class Uploads:
    def __init__(self, store: JobStore, submissions: Submissions, audio_ttl_seconds: int) -> None:
        self._store = store
        self._submissions = submissions
        self._audio_ttl = audio_ttl_seconds

    async def receive(
        self, requests: AsyncIterator[pb.UploadJobRequest]
    ) -> job_pb2.TranscriptionJob:
        header = await _header(requests)
        if not header.audio_duration_seconds > 0:
            raise InvalidArgument(
                "audio_duration_seconds must be the audio's probed duration; got "
                f"{header.audio_duration_seconds:g}",
                field="header.audio_duration_seconds",
            )
        job_id = names.new_job_id()
        logs.bind(job_id=job_id)
        tenant = header.tenant or DEFAULT_TENANT
        try:
            fingerprint = await self._store_audio(job_id, header, requests)
            request = pb.SubmitJobRequest(
                tenant=tenant,
                audio=audio_pb2.Audio(filename=header.filename),
                config=header.config,
                routing_policy=pb.ROUTING_POLICY_QUEUE,
                idempotency_key=header.idempotency_key,
                audio_duration_seconds=header.audio_duration_seconds,
            )
            return await self._submissions.submit(
                request, tenant, staged=Staged(job_id, fingerprint)
            )
        except BaseException:
            # Not accepted: its parts would only wait for their TTL.
            with contextlib.suppress(Exception):
                await self._store.delete_audio(job_id)
            raise

    async def _store_audio(
        self,
        job_id: str,
        header: pb.UploadJobHeader,
        requests: AsyncIterator[pb.UploadJobRequest],
    ) -> str:
        """Store the chunks as parts; the submission's fingerprint."""
        digest = fingerprints.hasher(header.config)
        pending = bytearray()
        total = 0
        async for request in requests:
            if request.WhichOneof("part") != "audio_chunk":
                raise InvalidArgument("the header was sent twice", field="header")
            chunk = request.audio_chunk
            digest.update(chunk)
            pending += chunk
            total += len(chunk)
            if len(pending) >= AUDIO_PART_BYTES:
                await self._store.append_audio(job_id, bytes(pending), self._audio_ttl)
                pending.clear()
        if pending:
            await self._store.append_audio(job_id, bytes(pending), self._audio_ttl)
        if total == 0:
            raise InvalidArgument("the upload holds no audio", field="audio_chunk")
        return digest.hexdigest()


async def _header(requests: AsyncIterator[pb.UploadJobRequest]) -> pb.UploadJobHeader:
    try:
        first = await anext(aiter(requests))
    except StopAsyncIteration:
        first = None
    if first is None or first.WhichOneof("part") != "header":
        raise InvalidArgument("the first UploadJobRequest must be the header", field="header")
    return first.header
