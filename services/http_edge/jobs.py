"""Jobs over HTTP: /v1/jobs and its server-sent events, each route one call to the gateway.

A job's id in a path is the id part of its name (`/v1/jobs/{id}` is "jobs/{id}" in gRPC).
Uploads are streamed: a raw body is forwarded to `UploadJob` in 1 MiB chunks as it arrives, a
multipart file from its spooled copy, so no file is ever whole in the edge's memory.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Annotated, Any, Literal

import grpc
from fastapi import APIRouter, Header, Path, Query, Request, Response
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.datastructures import UploadFile

from sayit.common.v1 import job_pb2
from sayit.common.v1 import transcription_pb2 as tpb
from sayit.speech.v1 import speech_service_pb2 as pb
from services.common.names import JOB_NAME_PREFIX
from services.http_edge import audio_input, errors, gateway, job_events, schemas, sse
from services.http_edge.schemas import Job, JobEvent, JobList, PresetName, TaskName

router = APIRouter(tags=["jobs"])

UNARY_TIMEOUT_SECONDS = 30.0
MAX_FORM_FIELDS = 16
# The gateway's field paths -> the names an HTTP caller used.
UPLOAD_PARAMS = {
    "config.language_code": "language",
    "config.initial_prompt": "prompt",
    "config.hotwords": "hotwords",
    "config.preset": "preset",
    "config.task": "task",
    "audio.filename": "filename",
    "audio.content": "file",
    "audio_chunk": "file",
    "header.total_bytes": "file",
    "idempotency_key": "Idempotency-Key",
}
JOB_PARAMS = {"name": "id"}
LIST_PARAMS = {"page_size": "page_size", "page_token": "page_token"}

JobId = Annotated[
    str,
    Path(
        description="the job's id: its name without `jobs/` (32 lowercase hex characters)",
        examples=["0123456789abcdef0123456789abcdef"],
    ),
]


class UploadOptions(BaseModel):
    """How to transcribe an uploaded file: multipart form fields, or query parameters with a
    raw body."""

    model_config = ConfigDict(extra="forbid")

    language: str | None = Field(
        None, description='"ko", "en", any Whisper language; empty = detect'
    )
    prompt: str | None = Field(None, description="text that conditions the first window")
    preset: PresetName | None = Field(None, description="decoding preset; default accurate")
    task: TaskName | None = Field(None, description="translate = English text; default transcribe")
    hotwords: str | None = Field(None, description="comma-separated words to bias decoding to")
    word_timestamps: bool | None = Field(None, description="per-word timestamps in segments")
    vad_filter: bool | None = Field(None, description="voice activity detection; default on")
    filename: str | None = Field(None, description="the file's name (a format hint)")

    def header(
        self, filename: str, idempotency_key: str | None, total_bytes: int
    ) -> pb.UploadJobHeader:
        config = tpb.TranscriptionConfig(
            language_code=self.language or "",
            preset=f"PRESET_{self.preset.upper()}" if self.preset else None,
            task=f"TASK_{self.task.upper()}" if self.task else None,
            word_timestamps=bool(self.word_timestamps),
            initial_prompt=self.prompt or "",
            hotwords=self.hotwords or "",
        )
        if self.vad_filter is not None:
            config.vad_filter = self.vad_filter
        return pb.UploadJobHeader(
            filename=self.filename or filename,
            config=config,
            idempotency_key=idempotency_key or "",
            total_bytes=max(0, total_bytes),
        )


def _form_fields(properties: dict[str, Any]) -> dict[str, Any]:
    """Query parameters' schemas as form fields (a field is absent or a text, never null)."""
    fields = {}
    for name, schema in properties.items():
        field = dict(schema)
        choices = [s for s in field.pop("anyOf", []) if s.get("type") != "null"]
        if len(choices) == 1:
            field.update(choices[0])
        fields[name] = field
    return fields


def _binary(description: str) -> dict[str, Any]:
    return {"schema": {"type": "string", "format": "binary", "description": description}}


_UPLOAD_BODY = {
    "requestBody": {
        "required": True,
        "description": "The audio file: a multipart form (`file` and the options as fields), "
        "or the file itself as the body (any other Content-Type, options as query parameters).",
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["file"],
                    "properties": {
                        "file": {
                            "type": "string",
                            "format": "binary",
                            "description": "the audio file (WAV, FLAC, OGG, MP3, M4A, WebM...)",
                        },
                        **_form_fields(UploadOptions.model_json_schema()["properties"]),
                    },
                }
            },
            "application/octet-stream": _binary("the audio file's bytes, streamed"),
            "audio/*": _binary("the audio file's bytes, streamed"),
        },
    }
}


def _job_name(job_id: str) -> str:
    return JOB_NAME_PREFIX + job_id


def _created(response: Response, job: job_pb2.TranscriptionJob) -> Job:
    converted = schemas.job(job)
    response.headers["Location"] = f"/v1/jobs/{converted.id}"
    return converted


async def upload(
    request: Request, requests: AsyncIterator[pb.UploadJobRequest]
) -> job_pb2.TranscriptionJob:
    """Stream `requests` to UploadJob. The gateway's error when it answers one (even before the
    body is all read: a bad key, an upload over the limit); a failed body read (413, the client
    gone) cancels the call, so no job is made of part of a file."""
    call = gateway.of(request).stub.UploadJob(metadata=gateway.metadata(request))
    try:
        async for message in requests:
            await call.write(message)
        await call.done_writing()
    except (grpc.RpcError, asyncio.InvalidStateError) as error:
        # The gateway ended the call early; a write then fails with a generic error ("Internal
        # error from Core"), the call's status says why.
        try:
            await call
        except grpc.RpcError as status:
            raise status from None
        raise error
    except BaseException:
        call.cancel()
        raise
    reply = await call
    return reply.job


def _options_from_form(fields: dict[str, str]) -> UploadOptions:
    try:
        return UploadOptions.model_validate(fields)
    except ValidationError as error:
        raise RequestValidationError(error.errors(include_url=False)) from None


@router.post(
    "/v1/jobs",
    status_code=201,
    response_model=Job,
    responses=errors.ERROR_RESPONSES,
    openapi_extra=_UPLOAD_BODY,
    summary="Create a job from an uploaded file",
    response_description="The job, queued; `Location` is its URL",
)
async def create_job(
    request: Request,
    response: Response,
    options: Annotated[UploadOptions, Query()],
    idempotency_key: Annotated[
        str | None,
        Header(
            alias="Idempotency-Key",
            max_length=128,
            description="the same key from the same caller returns the same job",
        ),
    ] = None,
) -> Any:
    content_type = request.headers.get("content-type", "").lower()
    try:
        if content_type.startswith("multipart/form-data"):
            job = await _create_from_form(request, options, idempotency_key)
        else:
            declared = request.headers.get("content-length", "")
            header = options.header("", idempotency_key, int(declared) if declared.isdigit() else 0)
            job = await upload(
                request, audio_input.upload_requests(header, audio_input.body_chunks(request))
            )
    except grpc.RpcError as error:
        return errors.from_rpc_error(error, UPLOAD_PARAMS)
    return _created(response, job)


async def _create_from_form(
    request: Request, query: UploadOptions, idempotency_key: str | None
) -> job_pb2.TranscriptionJob:
    form = await request.form(max_files=1, max_fields=MAX_FORM_FIELDS)
    try:
        file = form.get("file")
        if not isinstance(file, UploadFile):
            raise errors.ApiError(
                400,
                "file: the audio file is missing; send it as the multipart part `file` "
                "(curl -F file=@audio.wav)",
                param="file",
                code="invalid_argument",
            )
        fields: dict[str, Any] = query.model_dump(exclude_unset=True)
        for key, value in form.multi_items():
            if key == "file":
                continue
            if not isinstance(value, str):
                raise errors.ApiError(
                    400,
                    f"{key}: expected a text field, got a file",
                    param=key,
                    code="invalid_argument",
                )
            fields[key] = value
        options = _options_from_form(fields)
        header = options.header(file.filename or "", idempotency_key, file.size or 0)
        return await upload(request, audio_input.upload_requests(header, audio_input.chunks(file)))
    finally:
        await form.close()


@router.get(
    "/v1/jobs/{id}",
    response_model=Job,
    responses=errors.ERROR_RESPONSES,
    summary="Get a job: state, progress, transcript or error",
)
async def get_job(request: Request, id: JobId) -> Any:
    try:
        reply = await gateway.of(request).stub.GetJob(
            pb.GetJobRequest(name=_job_name(id)),
            metadata=gateway.metadata(request),
            timeout=UNARY_TIMEOUT_SECONDS,
        )
    except grpc.RpcError as error:
        return errors.from_rpc_error(error, JOB_PARAMS)
    return schemas.job(reply.job)


@router.get(
    "/v1/jobs",
    response_model=JobList,
    responses=errors.ERROR_RESPONSES,
    summary="List the caller's jobs, newest first",
)
async def list_jobs(
    request: Request,
    page_size: Annotated[
        int | None, Query(ge=1, le=100, description="jobs per page; default 20")
    ] = None,
    page_token: Annotated[
        str | None,
        Query(max_length=512, description="`next_page_token` of the previous page"),
    ] = None,
    view: Annotated[
        Literal["basic", "full"],
        Query(description="basic leaves out transcripts' text and segments; full keeps them"),
    ] = "basic",
) -> Any:
    try:
        reply = await gateway.of(request).stub.ListJobs(
            pb.ListJobsRequest(
                page_size=page_size or 0,
                page_token=page_token or "",
                view=job_pb2.JOB_VIEW_FULL if view == "full" else job_pb2.JOB_VIEW_BASIC,
            ),
            metadata=gateway.metadata(request),
            timeout=UNARY_TIMEOUT_SECONDS,
        )
    except grpc.RpcError as error:
        return errors.from_rpc_error(error, LIST_PARAMS)
    return schemas.job_list(list(reply.jobs), reply.next_page_token)


@router.post(
    "/v1/jobs/{id}:cancel",
    response_model=Job,
    responses=errors.ERROR_RESPONSES,
    summary="Cancel a queued or running job (409 when it has already ended)",
)
async def cancel_job(request: Request, id: JobId) -> Any:
    try:
        reply = await gateway.of(request).stub.CancelJob(
            pb.CancelJobRequest(name=_job_name(id)),
            metadata=gateway.metadata(request),
            timeout=UNARY_TIMEOUT_SECONDS,
        )
    except grpc.RpcError as error:
        return errors.from_rpc_error(error, JOB_PARAMS)
    return schemas.job(reply.job)


# The events route answers text/event-stream; its errors are still JSON.
_JSON_ERRORS = {
    status: {
        "description": entry["description"],
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorBody"}}},
    }
    for status, entry in errors.ERROR_RESPONSES.items()
}


@router.get(
    "/v1/jobs/{id}/events",
    status_code=200,
    response_class=job_events.EventStreamResponse,
    response_model=JobEvent,
    responses={
        200: {
            "content": {
                sse.MEDIA_TYPE: {
                    # OpenAPI 3.2's way to describe one event, as FastAPI's own SSE routes do.
                    "itemSchema": {
                        "type": "object",
                        "required": ["data"],
                        "properties": {
                            "id": {"type": "string", "description": "the event's sequence"},
                            "event": {"type": "string", "description": "the event's type"},
                            "data": {
                                "type": "string",
                                "contentMediaType": "application/json",
                                "contentSchema": {"$ref": "#/components/schemas/JobEvent"},
                            },
                        },
                    }
                }
            },
            "description": "Server-sent events, one per job event: `id: <sequence>`, "
            "`event: <type>` (accepted, progress, segment, completed, failed, cancelled), "
            "`data: <JobEvent JSON>`; a comment line while the job is quiet; the stream ends "
            "after the terminal event. An error after the stream started is an `error` event "
            "whose data is the error body.",
        },
        **_JSON_ERRORS,
    },
    summary="Follow a job's events (server-sent events, resumable with Last-Event-ID)",
)
async def job_events_stream(
    request: Request,
    id: JobId,
    after: Annotated[
        int | None,
        Query(
            ge=0,
            le=job_events.MAX_SEQUENCE,
            description="send only events after this sequence (Last-Event-ID wins when sent)",
        ),
    ] = None,
    last_event_id: Annotated[
        str | None,
        Header(
            alias=job_events.LAST_EVENT_ID,
            description="the id of the last event received: the stream resumes after it",
        ),
    ] = None,
) -> Any:
    after_sequence = job_events.resume_after(last_event_id, after)
    slots = request.app.state.streams
    slots.take()
    stream: job_events.WatchStream | None = None
    try:
        call = gateway.of(request).stub.WatchJob(
            pb.WatchJobRequest(name=_job_name(id), after_sequence=after_sequence),
            metadata=gateway.metadata(request),
        )
        stream = job_events.WatchStream(call, request.app.state.settings.http_heartbeat_seconds)
        await stream.open(min(job_events.OPEN_WAIT_SECONDS, stream.heartbeat_seconds))
    except BaseException as error:
        if stream is not None:
            stream.close()
        slots.release()
        if isinstance(error, grpc.RpcError):
            return errors.from_rpc_error(error, job_events.PARAMS)
        raise
    opened = stream

    def closed() -> None:
        opened.close()
        slots.release()

    return job_events.EventStreamResponse(opened.frames(), closed)
