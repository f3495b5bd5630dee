"""Short jobs, transcribed at once on the direct transcribers."""

from __future__ import annotations

import asyncio

import grpc

from sayit.common.v1 import audio_pb2, transcription_pb2
from sayit.transcriber.v1 import transcriber_service_pb2 as tpb
from sayit.transcriber.v1 import transcriber_service_pb2_grpc as tpb_grpc
from services.common import logs
from services.common.errors import status_code_number
from services.jobs import changes, schema
from services.jobs.store import JobStore
from services.scheduler.direct_slots import DirectSlots

log = logs.get_logger("sayit.scheduler")

COMPLETED, FAILED, ENDED, OVERFLOW = "completed", "failed", "ended", "overflow"
# The transcriber could not take the job before doing any work: queue it instead.
_OVERFLOW_CODES = (grpc.StatusCode.RESOURCE_EXHAUSTED, grpc.StatusCode.UNAVAILABLE)


class DirectRunner:
    def __init__(self, store: JobStore, channel: grpc.aio.Channel, slots: DirectSlots) -> None:
        self._store = store
        self._stub = tpb_grpc.TranscriberServiceStub(channel)
        self.slots = slots
        self.tasks: dict[str, asyncio.Task[str]] = {}

    async def run(
        self,
        job_id: str,
        audio: audio_pb2.Audio,
        config: transcription_pb2.TranscriptionConfig,
        total_seconds: float,
        timeout: float,  # noqa: ASYNC109 (a gRPC deadline for the call, not an asyncio timeout)
    ) -> str:
        """Stream the transcriber's work into the job. Returns COMPLETED, FAILED, ENDED (the job
        ended elsewhere, e.g. cancelled) or OVERFLOW (no transcriber could start it)."""
        request = tpb.TranscribeStreamRequest(audio=audio, config=config, job_id=job_id)
        call = self._stub.TranscribeStream(request, timeout=timeout)
        received = False
        try:
            async for response in call:
                received = True
                change = changes.transcriber_change(job_id, response, total_seconds)
                _, state = await self._store.apply(job_id, change)
                if response.HasField("transcript"):
                    if state != schema.SUCCEEDED:
                        return ENDED
                    # The transcriber's own time: not the wait for a slot after a job sent ahead.
                    self.slots.finished(total_seconds, response.transcript.processing_seconds)
                    return COMPLETED
                if state in schema.TERMINAL:
                    call.cancel()
                    return ENDED
            return ENDED
        except grpc.aio.AioRpcError as error:
            if not received and error.code() in _OVERFLOW_CODES:
                log.info("direct_overflow", code=error.code().name)
                return OVERFLOW
            code = error.code()
            if code not in (grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.DEADLINE_EXCEEDED):
                log.warning("direct_failed", code=code.name, details=error.details())
            await self._store.apply(
                job_id,
                changes.failed_change(job_id, status_code_number(code), error.details() or ""),
            )
            return FAILED
        except asyncio.CancelledError:
            call.cancel()
            raise
