"""SpeechService, the public API: validate, probe and charge the audio, forward to the scheduler
with the caller's tenant and remaining deadline, convert the answer. UploadJob's streamed audio
is taken in by services.gateway.upload.

The caller has been authenticated (and its request rate charged) by the gateway's interceptor
before any method here runs; `auth.current()` is its principal.
"""

from __future__ import annotations

import asyncio
import functools
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from concurrent.futures import Executor
from typing import TypeVar

import grpc

from sayit.common.v1 import audio_pb2, job_pb2
from sayit.common.v1 import transcription_pb2 as tpb
from sayit.scheduler.v1 import scheduler_service_pb2 as spb
from sayit.scheduler.v1 import scheduler_service_pb2_grpc as spb_grpc
from sayit.speech.v1 import speech_service_pb2 as pb
from sayit.speech.v1 import speech_service_pb2_grpc as pb_grpc
from services.common import audio as audio_files
from services.common import logs
from services.common.channels import call_timeout
from services.common.errors import DeadlineExceeded, InvalidArgument
from services.common.names import job_id_from_name
from services.gateway import auth, convert, info, metrics, upload, wire
from services.gateway.config import GatewayConfig
from services.gateway.quotas import Limiter
from services.gateway.streaming import LiveStreams

T = TypeVar("T")

# A submission the scheduler refused with one of these was not accepted: its audio seconds are
# given back. DEADLINE_EXCEEDED and CANCELLED may come after the job was accepted.
_NOT_ACCEPTED = frozenset(
    {
        grpc.StatusCode.INVALID_ARGUMENT,
        grpc.StatusCode.RESOURCE_EXHAUSTED,
        grpc.StatusCode.UNAVAILABLE,
        grpc.StatusCode.FAILED_PRECONDITION,
        grpc.StatusCode.PERMISSION_DENIED,
        grpc.StatusCode.UNAUTHENTICATED,
        grpc.StatusCode.UNIMPLEMENTED,
    }
)


def tenant_of(context: grpc.aio.ServicerContext) -> str:
    """The caller's tenant (the default one when authentication is off)."""
    return auth.current().tenant


class SpeechServicer(pb_grpc.SpeechServiceServicer):
    def __init__(
        self,
        config: GatewayConfig,
        channel: grpc.aio.Channel,
        limiter: Limiter | None = None,
        executor: Executor | None = None,
    ) -> None:
        self._config = config
        self._scheduler = spb_grpc.SchedulerServiceStub(channel)
        # SubmitJob with the request already serialised (services.gateway.wire).
        self._submit_bytes = channel.unary_unary(
            "/sayit.scheduler.v1.SchedulerService/SubmitJob",
            request_serializer=None,
            response_deserializer=spb.SubmitJobResponse.FromString,
        )
        self._limiter = limiter
        self._executor = executor
        self.live = LiveStreams(config, channel, limiter)

    async def _probe_seconds(
        self,
        source: audio_files.AudioSource,
        filename: str,
        context: grpc.aio.ServicerContext,
    ) -> float:
        """The audio's duration (bad audio, audio holding more than it declares and audio over
        the limit are refused here). `source`: the bytes, or an uploaded file spooled to disk."""
        limit = self._config.max_audio_seconds
        remaining = context.time_remaining()
        cancel = threading.Event()
        probe = functools.partial(
            audio_files.probe,
            source,
            filename,
            limit,
            budget_seconds=self._config.probe_budget_seconds,
            deadline=None if remaining is None else time.monotonic() + remaining,
            cancel=cancel,
        )
        try:
            info = await asyncio.get_running_loop().run_in_executor(self._executor, probe)
        except asyncio.CancelledError:
            cancel.set()  # the caller went away: free the probe thread for the next one
            raise
        except audio_files.Cancelled:
            raise DeadlineExceeded("the deadline passed while the audio was probed") from None
        seconds = info.duration_seconds
        if seconds > limit:
            raise InvalidArgument(
                f"audio is {seconds:.0f} s long; the limit is {limit:.0f} s "
                f"({limit / 3600:g} h): split it into shorter files",
                field="audio.content",
            )
        return seconds

    async def _submit(
        self,
        context: grpc.aio.ServicerContext,
        audio: audio_pb2.Audio,
        config: tpb.TranscriptionConfig,
        *,
        policy: int,
        wait: bool,
        idempotency_key: str = "",
    ) -> job_pb2.TranscriptionJob:
        # Read once: each read of a bytes field copies it (100 MiB per read for a large file).
        content = audio.content
        convert.validate_content(content, self._config.server.max_message_bytes)
        effective = convert.validate_submission(audio.filename, config, self._config.model)
        tenant = tenant_of(context)
        seconds = await self._probe_seconds(content, audio.filename, context)
        default = self._config.wait_timeout_seconds if wait else self._config.unary_timeout_seconds
        fields = spb.SubmitJobRequest(
            tenant=tenant,
            config=effective,
            audio_duration_seconds=seconds,
            routing_policy=policy,  # type: ignore[arg-type]
            wait_if_short=wait,
            idempotency_key=idempotency_key,
        )
        request = wire.submit_request_bytes(fields, content, audio.filename)
        del content  # only the request's bytes are sent on
        timeout = call_timeout(context, default)
        reply = await self._charged(
            tenant, seconds, lambda: self._submit_bytes(request, timeout=timeout)
        )
        return reply.job

    async def _charged(self, tenant: str, seconds: float, call: Callable[[], Awaitable[T]]) -> T:
        """Charge the tenant's audio quota, then make the scheduler call; give the seconds back
        if the scheduler did not accept the job."""
        if self._limiter is not None:
            await self._limiter.charge_audio(tenant, seconds)
        try:
            reply = await call()  # made only now: a gRPC call starts when it is made
        except grpc.RpcError as error:
            if self._limiter is not None and error.code() in _NOT_ACCEPTED:
                await self._limiter.refund_audio(tenant, seconds)
            raise
        job: job_pb2.TranscriptionJob = reply.job  # type: ignore[attr-defined]
        logs.bind(job_id=job.name.removeprefix("jobs/"))
        metrics.submitted(job)
        return reply

    async def _watch(
        self, context: grpc.aio.ServicerContext, job_id: str, after_sequence: int
    ) -> AsyncIterator[spb.WatchJobResponse]:
        call = self._scheduler.WatchJob(
            spb.WatchJobRequest(
                tenant=tenant_of(context), job_id=job_id, after_sequence=after_sequence
            ),
            timeout=call_timeout(context, self._config.stream_timeout_seconds),
        )
        try:
            async for reply in call:
                yield reply
        finally:
            call.cancel()

    async def Transcribe(
        self, request: pb.TranscribeRequest, context: grpc.aio.ServicerContext
    ) -> pb.TranscribeResponse:
        job = await self._submit(
            context, request.audio, request.config, policy=spb.ROUTING_POLICY_AUTO, wait=True
        )
        return convert.transcribe_response(job)

    async def TranscribeWithProgress(
        self, request: pb.TranscribeWithProgressRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[pb.TranscribeWithProgressResponse]:
        job = await self._submit(
            context, request.audio, request.config, policy=spb.ROUTING_POLICY_AUTO, wait=False
        )
        async for reply in self._watch(context, job.name.removeprefix("jobs/"), 0):
            yield pb.TranscribeWithProgressResponse(event=reply.event)

    async def CreateJob(
        self, request: pb.CreateJobRequest, context: grpc.aio.ServicerContext
    ) -> pb.CreateJobResponse:
        convert.validate_idempotency_key(request.idempotency_key)
        job = await self._submit(
            context,
            request.audio,
            request.config,
            policy=spb.ROUTING_POLICY_QUEUE,
            wait=False,
            idempotency_key=request.idempotency_key,
        )
        return pb.CreateJobResponse(job=job)

    async def UploadJob(
        self, requests: AsyncIterator[pb.UploadJobRequest], context: grpc.aio.ServicerContext
    ) -> pb.UploadJobResponse:
        header = await upload.read_header(requests)
        max_bytes = self._config.max_upload_bytes
        effective = upload.check_header(header, self._config.model, max_bytes)
        tenant = tenant_of(context)
        loop = asyncio.get_running_loop()
        file = await loop.run_in_executor(None, upload.temporary_file, self._config.upload_dir)
        try:
            await upload.spool(requests, file, max_bytes, header.total_bytes)
            seconds = await self._probe_seconds(file, header.filename, context)
            forwarded = spb.UploadJobHeader(
                tenant=tenant,
                filename=header.filename,
                config=effective,
                idempotency_key=header.idempotency_key,
                audio_duration_seconds=seconds,
            )
            # Sending gigabytes on takes a while: without a caller's deadline, the streams' one.
            timeout = call_timeout(context, self._config.stream_timeout_seconds)
            reply = await self._charged(
                tenant,
                seconds,
                lambda: self._scheduler.UploadJob(upload.forward(forwarded, file), timeout=timeout),
            )
        finally:
            await loop.run_in_executor(None, file.close)
        return pb.UploadJobResponse(job=reply.job)

    async def GetJob(
        self, request: pb.GetJobRequest, context: grpc.aio.ServicerContext
    ) -> pb.GetJobResponse:
        job_id = job_id_from_name(request.name)
        logs.bind(job_id=job_id)
        reply = await self._scheduler.GetJob(
            spb.GetJobRequest(tenant=tenant_of(context), job_id=job_id),
            timeout=call_timeout(context, self._config.unary_timeout_seconds),
        )
        return pb.GetJobResponse(job=reply.job)

    async def WatchJob(
        self, request: pb.WatchJobRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[pb.WatchJobResponse]:
        job_id = job_id_from_name(request.name)
        convert.validate_after_sequence(request.after_sequence)
        logs.bind(job_id=job_id)
        async for reply in self._watch(context, job_id, request.after_sequence):
            yield pb.WatchJobResponse(event=reply.event)

    async def CancelJob(
        self, request: pb.CancelJobRequest, context: grpc.aio.ServicerContext
    ) -> pb.CancelJobResponse:
        job_id = job_id_from_name(request.name)
        logs.bind(job_id=job_id)
        reply = await self._scheduler.CancelJob(
            spb.CancelJobRequest(tenant=tenant_of(context), job_id=job_id),
            timeout=call_timeout(context, self._config.unary_timeout_seconds),
        )
        return pb.CancelJobResponse(job=reply.job)

    async def ListJobs(
        self, request: pb.ListJobsRequest, context: grpc.aio.ServicerContext
    ) -> pb.ListJobsResponse:
        convert.validate_page(request.page_size, request.page_token)
        reply = await self._scheduler.ListJobs(
            spb.ListJobsRequest(
                tenant=tenant_of(context),
                page_size=request.page_size,
                page_token=request.page_token,
                view=request.view,
            ),
            timeout=call_timeout(context, self._config.unary_timeout_seconds),
        )
        return pb.ListJobsResponse(jobs=reply.jobs, next_page_token=reply.next_page_token)

    async def StreamingRecognize(
        self,
        requests: AsyncIterator[pb.StreamingRecognizeRequest],
        context: grpc.aio.ServicerContext,
    ) -> AsyncIterator[pb.StreamingRecognizeResponse]:
        async for response in self.live.recognize(requests, context):
            yield response

    async def GetInfo(
        self, request: pb.GetInfoRequest, context: grpc.aio.ServicerContext
    ) -> pb.GetInfoResponse:
        return info.get_info(self._config, auth.current(), self._limiter)
