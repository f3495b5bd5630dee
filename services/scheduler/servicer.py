"""SchedulerService: each RPC parses its request, calls the part that owns it, and answers."""

from __future__ import annotations

from collections.abc import AsyncIterator

import grpc

from sayit.scheduler.v1 import scheduler_service_pb2 as pb
from sayit.scheduler.v1 import scheduler_service_pb2_grpc as pb_grpc
from services.common import logs, names
from services.common.errors import InvalidArgument
from services.jobs.store import JobStore
from services.scheduler.cancellation import Cancellation
from services.scheduler.sessions import LiveSessions
from services.scheduler.submission import Submissions
from services.scheduler.uploads import Uploads

DEFAULT_TENANT = "default"


class SchedulerServicer(pb_grpc.SchedulerServiceServicer):
    def __init__(
        self,
        submissions: Submissions,
        store: JobStore,
        cancellation: Cancellation,
        uploads: Uploads,
        sessions: LiveSessions,
        *,
        max_list_bytes: int | None = None,
    ) -> None:
        """`max_list_bytes`: the most a JOB_VIEW_FULL ListJobs page may take (the message
        limit), so a page of long transcripts ends early instead of failing."""
        self._submissions = submissions
        self._store = store
        self._cancellation = cancellation
        self._uploads = uploads
        self._max_list_bytes = max_list_bytes
        self._sessions = sessions

    async def SubmitJob(
        self, request: pb.SubmitJobRequest, context: grpc.aio.ServicerContext
    ) -> pb.SubmitJobResponse:
        job = await self._submissions.submit(request, request.tenant or DEFAULT_TENANT)
        return pb.SubmitJobResponse(job=job)

    async def UploadJob(
        self, requests: AsyncIterator[pb.UploadJobRequest], context: grpc.aio.ServicerContext
    ) -> pb.UploadJobResponse:
        return pb.UploadJobResponse(job=await self._uploads.receive(requests))

    async def GetJob(
        self, request: pb.GetJobRequest, context: grpc.aio.ServicerContext
    ) -> pb.GetJobResponse:
        job_id = _job_id(request.job_id)
        return pb.GetJobResponse(
            job=await self._store.job(job_id, request.tenant or DEFAULT_TENANT)
        )

    async def WatchJob(
        self, request: pb.WatchJobRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[pb.WatchJobResponse]:
        job_id = _job_id(request.job_id)
        if request.after_sequence < 0:
            raise InvalidArgument("after_sequence must be 0 or more", field="after_sequence")
        logs.bind(job_id=job_id)
        tenant = request.tenant or DEFAULT_TENANT
        async for message in self._store.watch(job_id, tenant, request.after_sequence):
            yield pb.WatchJobResponse(event=message)

    async def CancelJob(
        self, request: pb.CancelJobRequest, context: grpc.aio.ServicerContext
    ) -> pb.CancelJobResponse:
        job_id = _job_id(request.job_id)
        logs.bind(job_id=job_id)
        tenant = request.tenant or DEFAULT_TENANT
        job = await self._cancellation.cancel(job_id, tenant, "cancelled by the caller")
        return pb.CancelJobResponse(job=job)

    async def ListJobs(
        self, request: pb.ListJobsRequest, context: grpc.aio.ServicerContext
    ) -> pb.ListJobsResponse:
        jobs, token = await self._store.list_jobs(
            request.tenant or DEFAULT_TENANT,
            request.page_size,
            request.page_token,
            view=request.view,
            max_bytes=self._max_list_bytes,
        )
        return pb.ListJobsResponse(jobs=jobs, next_page_token=token)

    async def StreamingRecognize(
        self,
        requests: AsyncIterator[pb.StreamingRecognizeRequest],
        context: grpc.aio.ServicerContext,
    ) -> AsyncIterator[pb.StreamingRecognizeResponse]:
        async for response in self._sessions.run(requests, context):
            yield response


def _job_id(value: str) -> str:
    if not names.is_job_id(value):
        raise InvalidArgument(
            f"job_id must be 32 hex characters; got {value[:80]!r}", field="job_id"
        )
    return value
