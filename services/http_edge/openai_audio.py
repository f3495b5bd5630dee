"""OpenAI's audio API: POST /v1/audio/transcriptions and /v1/audio/translations, GET /v1/models.

Each request becomes calls of the gateway's public API with the caller's key: a file up to
SAYIT_HTTP_INLINE_BYTES goes by Transcribe (TranscribeWithProgress for `stream=true`), a larger
one by UploadJob in 1 MiB chunks from the spooled upload. Audio the gateway queues (longer than
its direct threshold) is a job: the edge follows it with WatchJob for up to
SAYIT_HTTP_TRANSCRIPTION_WAIT_SECONDS, then answers 504 `job_still_running` with the job's
Location (the job goes on; `x-should-retry: false` keeps the openai SDK from resubmitting).
Every answer about a job carries `X-SayIt-Job: jobs/{id}`. A caller who disconnects cancels the
edge's gRPC call (a queued job goes on; its other watchers are not affected).
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Annotated, Any, Literal, TypeVar

import grpc
from fastapi import APIRouter, File, Form, Request, Response, UploadFile
from fastapi.responses import JSONResponse, StreamingResponse

from sayit.common.v1 import audio_pb2, event_pb2
from sayit.common.v1 import transcription_pb2 as tpb
from sayit.speech.v1 import speech_service_pb2 as pb
from services.http_edge import audio_input, errors, gateway, openai_formats, openai_languages, sse
from services.http_edge.openai_formats import Granularity, ResponseFormat

router = APIRouter(tags=["OpenAI audio"])

WHISPER_ALIAS = "whisper-1"
JOB_HEADER = "X-SayIt-Job"
MODEL_CREATED = 0  # OpenAI's `created` (a Unix time); SayIt's served model has none.
INFO_TIMEOUT_SECONDS = 5.0

# The gateway's field paths -> the form fields of these routes.
PARAM_NAMES = {
    "config.language_code": "language",
    "config.model": "model",
    "config.initial_prompt": "prompt",
    "config.hotwords": "hotwords",
    "config.preset": "preset",
    "audio.content": "file",
    "audio.filename": "file",
    "audio_chunk": "file",
    "header": "file",
    "header.total_bytes": "file",
}
_PRESETS = {"accurate": tpb.PRESET_ACCURATE, "fast": tpb.PRESET_FAST}
_STATUS_BY_NUMBER = {code.value[0]: code for code in grpc.StatusCode}

T = TypeVar("T")


class ClientGone(Exception):
    """The caller disconnected; nobody reads the answer."""


class WaitExpired(Exception):
    """The job is still running at the end of the wait."""


class JobEnded(Exception):
    """The job failed or was cancelled: `response` is the caller's answer."""

    def __init__(self, response: JSONResponse) -> None:
        super().__init__("job ended without a transcript")
        self.response = response


# --- errors ------------------------------------------------------------------------------------


def job_id(name: str) -> str:
    return name.removeprefix("jobs/")


def status_code_of(number: int) -> grpc.StatusCode:
    """A google.rpc.Code number (JobError.code) as a grpc.StatusCode (UNKNOWN if not one)."""
    return _STATUS_BY_NUMBER.get(number, grpc.StatusCode.UNKNOWN)


def rpc_error_response(error: grpc.RpcError, job_name: str = "") -> JSONResponse:
    """A failed gateway call in OpenAI's shape, field paths named as this route's caller
    named them."""
    answer = errors.from_rpc_error(error, PARAM_NAMES)
    if job_name:
        answer.headers[JOB_HEADER] = job_name
    return answer


def job_error_response(name: str, error: Any) -> JSONResponse:
    """The answer for a job that failed with `error` (a JobError)."""
    answer = errors.from_status(
        status_code_of(error.code), error.message or "the job failed", param_names=PARAM_NAMES
    )
    answer.headers[JOB_HEADER] = name
    return answer


def cancelled_response(name: str, reason: str) -> JSONResponse:
    message = f"job {name} was cancelled" + (f": {reason}" if reason else "")
    return errors.response(409, message, code="job_cancelled", headers={JOB_HEADER: name})


def still_running_response(name: str, waited: float) -> JSONResponse:
    return errors.response(
        504,
        f"job {name} is still running after {waited:g} s; it goes on: follow it at "
        f"/v1/jobs/{job_id(name)} (GET, or its /events)",
        code="job_still_running",
        error_type="timeout",
        headers={
            "Location": f"/v1/jobs/{job_id(name)}",
            "x-should-retry": "false",
            JOB_HEADER: name,
        },
    )


def _error_dict(answer: JSONResponse) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(bytes(answer.body))
    return data


# --- the caller's connection -------------------------------------------------------------------


async def _disconnected(request: Request) -> None:
    """Returns when the caller has gone (the body has been read by then)."""
    while True:
        message = await request.receive()
        if message["type"] == "http.disconnect":
            return


async def guarded(
    request: Request,
    work: Awaitable[T],
    cancel: Callable[[], object],
    seconds: float | None = None,
) -> T:
    """`work`'s result; if the caller disconnects first (ClientGone) or `seconds` pass
    (WaitExpired), `cancel` is called (the gRPC call ends) and `work` is cancelled."""
    task = asyncio.ensure_future(work)
    gone = asyncio.ensure_future(_disconnected(request))
    try:
        done, _ = await asyncio.wait(
            {task, gone}, timeout=seconds, return_when=asyncio.FIRST_COMPLETED
        )
        if task in done:
            return task.result()
        cancel()
        task.cancel()
        raise ClientGone() if gone in done else WaitExpired()
    except asyncio.CancelledError:
        cancel()
        task.cancel()
        raise
    finally:
        gone.cancel()


# --- gateway calls -----------------------------------------------------------------------------


async def served_model(request: Request) -> str:
    """The model the gateway serves (GetInfo, asked once)."""
    state = request.app.state
    model: str | None = getattr(state, "served_model", None)
    if model is None:
        info = await gateway.of(request).stub.GetInfo(
            pb.GetInfoRequest(), timeout=INFO_TIMEOUT_SECONDS
        )
        model = state.served_model = info.model
    return model


async def check_model(request: Request, model: str) -> None:
    """`model` must be empty, OpenAI's whisper-1 (an alias) or the served model."""
    model = model.strip()
    if model in ("", WHISPER_ALIAS):
        return
    served = await served_model(request)
    if model != served:
        raise errors.ApiError(
            400,
            f"model {model[:80]!r} is not served here; use {WHISPER_ALIAS!r} or {served!r} "
            "(GET /v1/models lists them)",
            param="model",
            code="model_not_found",
        )


def build_config(
    *,
    language: str,
    prompt: str,
    preset: str | None,
    hotwords: str,
    word_timestamps: bool,
    translate: bool,
) -> tpb.TranscriptionConfig:
    return tpb.TranscriptionConfig(
        language_code=openai_languages.code_of(language),
        initial_prompt=prompt,
        preset=_PRESETS.get(preset or "", tpb.PRESET_UNSPECIFIED),
        hotwords=hotwords,
        word_timestamps=word_timestamps,
        task=tpb.TASK_TRANSLATE if translate else tpb.TASK_TRANSCRIBE,
    )


async def _terminal(call: Any, name: str) -> tpb.Transcript:
    """Read a job's events to its end: the transcript, or JobEnded."""
    async for reply in call:
        event = reply.event
        kind = event.WhichOneof("kind")
        if kind == "completed":
            transcript: tpb.Transcript = event.completed.transcript
            return transcript
        if kind == "failed":
            raise JobEnded(job_error_response(name, event.failed.error))
        if kind == "cancelled":
            raise JobEnded(cancelled_response(name, event.cancelled.reason))
    raise JobEnded(
        errors.response(
            503,
            f"the events of job {name} ended early; follow it at /v1/jobs/{job_id(name)}",
            code="unavailable",
            headers={JOB_HEADER: name, **errors.retry_after_headers(1.0)},
        )
    )


async def _wait_for_job(request: Request, name: str, deadline: float) -> tpb.Transcript:
    stub = gateway.of(request).stub
    call = stub.WatchJob(pb.WatchJobRequest(name=name), metadata=gateway.metadata(request))
    try:
        return await guarded(
            request, _terminal(call, name), call.cancel, max(0.0, deadline - time.monotonic())
        )
    finally:
        call.cancel()


async def _submit(
    request: Request, file: UploadFile, config: tpb.TranscriptionConfig
) -> tuple[str, tpb.Transcript | None]:
    """Send the file: (job name, transcript if it came back at once)."""
    stub = gateway.of(request).stub
    metadata = gateway.metadata(request)
    size = await audio_input.size_of(file)
    filename = file.filename or ""
    if size <= request.app.state.settings.http_inline_bytes:
        audio = tpb_audio(await audio_input.read_whole(file), filename)
        unary = stub.Transcribe(pb.TranscribeRequest(audio=audio, config=config), metadata=metadata)
        reply = await guarded(request, unary, unary.cancel)
        if reply.WhichOneof("result") == "transcript":
            return reply.job_name, reply.transcript
        return reply.job_name, None
    header = pb.UploadJobHeader(filename=filename, config=config, total_bytes=size)
    upload = stub.UploadJob(audio_input.upload_requests(file, header), metadata=metadata)
    uploaded = await guarded(request, upload, upload.cancel)
    return uploaded.job.name, None


def tpb_audio(content: bytes, filename: str) -> audio_pb2.Audio:
    return audio_pb2.Audio(content=content, filename=filename)


async def transcribe(
    request: Request, file: UploadFile, config: tpb.TranscriptionConfig
) -> tuple[str, tpb.Transcript] | Response:
    """(job name, transcript), or the error answer."""
    started = time.monotonic()
    wait = request.app.state.settings.http_transcription_wait_seconds
    name = ""
    try:
        name, transcript = await _submit(request, file, config)
        if transcript is None:
            transcript = await _wait_for_job(request, name, started + wait)
        return name, transcript
    except grpc.RpcError as error:
        return rpc_error_response(error, name)
    except JobEnded as ended:
        return ended.response
    except WaitExpired:
        return still_running_response(name, wait)
    except ClientGone:
        # Nobody reads it; uvicorn logs no error for it.
        return Response(status_code=499)


# --- streaming -----------------------------------------------------------------------------------


async def _open_events(request: Request, file: UploadFile, config: tpb.TranscriptionConfig) -> Any:
    """A call whose messages are JobEvents of the caller's job (TranscribeWithProgress, or
    UploadJob then WatchJob)."""
    stub = gateway.of(request).stub
    metadata = gateway.metadata(request)
    size = await audio_input.size_of(file)
    if size <= request.app.state.settings.http_inline_bytes:
        audio = tpb_audio(await audio_input.read_whole(file), file.filename or "")
        return stub.TranscribeWithProgress(
            pb.TranscribeWithProgressRequest(audio=audio, config=config), metadata=metadata
        )
    header = pb.UploadJobHeader(filename=file.filename or "", config=config, total_bytes=size)
    upload = stub.UploadJob(audio_input.upload_requests(file, header), metadata=metadata)
    uploaded = await guarded(request, upload, upload.cancel)
    return stub.WatchJob(pb.WatchJobRequest(name=uploaded.job.name), metadata=metadata)


async def _read(call: Any) -> Any:
    return await call.read()


async def stream_transcription(
    request: Request, file: UploadFile, config: tpb.TranscriptionConfig
) -> Response:
    """stream=true: `transcript.text.delta` per segment, then `transcript.text.done`."""
    streams = request.app.state.streams
    streams.take()
    call: Any = None
    try:
        call = await _open_events(request, file, config)
        first = await guarded(request, _read(call), call.cancel)
    except BaseException as error:
        if call is not None:
            call.cancel()
        streams.release()
        if isinstance(error, grpc.RpcError):
            return rpc_error_response(error)
        if isinstance(error, ClientGone):
            return Response(status_code=499)
        raise
    if first is grpc.aio.EOF:
        call.cancel()
        streams.release()
        return errors.response(503, "the job's events ended before it started", code="unavailable")
    name = first.event.name or f"jobs/{first.event.job_id}"
    heartbeat = request.app.state.settings.http_heartbeat_seconds
    return StreamingResponse(
        _events(call, first, name, heartbeat, streams.release),
        media_type=sse.MEDIA_TYPE,
        headers={**sse.HEADERS, JOB_HEADER: name},
    )


async def _events(
    call: Any, first: Any, name: str, heartbeat: float, release: Callable[[], None]
) -> AsyncIterator[bytes]:
    pending: asyncio.Future[Any] | None = None
    try:
        said = False  # some text has been sent
        message = first
        while message is not grpc.aio.EOF:
            event: event_pb2.JobEvent = message.event
            kind = event.WhichOneof("kind")
            if kind == "segment":
                delta = openai_formats.delta_event(event.segment, first=not said)
                said = said or bool(event.segment.text.strip())
                yield sse.event(delta)
            elif kind == "completed":
                transcript = event.completed.transcript
                if not said:  # no segment events came: the transcript's segments
                    for segment in transcript.segments:
                        yield sse.event(openai_formats.delta_event(segment, first=not said))
                        said = said or bool(segment.text.strip())
                yield sse.event(openai_formats.done_event(transcript))
                return
            elif kind == "failed":
                yield sse.event(_error_dict(job_error_response(name, event.failed.error)))
                return
            elif kind == "cancelled":
                yield sse.event(_error_dict(cancelled_response(name, event.cancelled.reason)))
                return
            pending = asyncio.ensure_future(call.read())
            while True:
                done, _ = await asyncio.wait({pending}, timeout=heartbeat)
                if done:
                    break
                yield sse.comment()
            message = pending.result()
            pending = None
        yield sse.event(
            errors.body(503, f"the events of job {name} ended early", code="unavailable")
        )
    except grpc.RpcError as error:
        yield sse.event(_error_dict(rpc_error_response(error, name)))
    finally:
        if pending is not None:
            pending.cancel()
        call.cancel()
        release()


# --- routes --------------------------------------------------------------------------------------

_TEXT_SCHEMA = {"schema": {"type": "string"}}


def _responses(model: type, *, stream: bool) -> dict[int | str, dict[str, Any]]:
    content: dict[str, Any] = {"text/plain": _TEXT_SCHEMA, "text/vtt": _TEXT_SCHEMA}
    if stream:
        content[sse.MEDIA_TYPE] = {
            "schema": {
                "type": "string",
                "description": "server-sent events: transcript.text.delta per segment, then "
                "transcript.text.done",
            }
        }
    return {
        200: {
            "model": model,
            "content": content,
            "description": "json and verbose_json as JSON; text and srt as text/plain; vtt as "
            "text/vtt" + ("; stream=true as text/event-stream" if stream else ""),
        },
        **{status: spec for status, spec in errors.ERROR_RESPONSES.items() if status != 404},
    }


def _answer(
    name: str,
    transcript: tpb.Transcript,
    response_format: str,
    granularities: set[str],
    *,
    translation: bool,
) -> Response:
    headers = {JOB_HEADER: name}
    if response_format == "json":
        return JSONResponse(
            openai_formats.as_json(transcript, translation=translation), headers=headers
        )
    if response_format == "verbose_json":
        return JSONResponse(
            openai_formats.as_verbose_json(transcript, granularities, translation=translation),
            headers=headers,
        )
    return Response(
        openai_formats.as_text(transcript, response_format),
        media_type=openai_formats.TEXT_MEDIA_TYPES[response_format],
        headers=headers,
    )


FileField = Annotated[
    UploadFile,
    File(description="The audio file: WAV, FLAC, OGG/Opus, OGG/Vorbis, MP3, M4A/AAC or WebM."),
]
ModelField = Annotated[
    str,
    Form(
        description=f"{WHISPER_ALIAS!r} or the served model's name (GET /v1/models); empty = "
        "the served model"
    ),
]
PromptField = Annotated[
    str, Form(description="Text that conditions the first window (Whisper's prompt).")
]
FormatField = Annotated[ResponseFormat, Form(description="json, text, srt, verbose_json or vtt.")]
TemperatureField = Annotated[
    float,
    Form(
        ge=0.0,
        le=1.0,
        description="Accepted for compatibility; SayIt decodes at temperature 0 with its "
        "preset's fallback whatever the value.",
    ),
]
PresetField = Annotated[
    Literal["accurate", "fast"] | None,
    Form(
        description="SayIt: the decoding preset, accurate (default) or fast.",
    ),
]
HotwordsField = Annotated[
    str,
    Form(description="SayIt: comma-separated words or phrases to bias decoding towards."),
]


@router.post(
    "/v1/audio/transcriptions",
    summary="Transcribe audio (OpenAI-compatible)",
    response_model=None,
    responses=_responses(openai_formats.TranscriptionResponse, stream=True),
)
async def create_transcription(
    request: Request,
    file: FileField,
    model: ModelField = "",
    language: Annotated[
        str,
        Form(
            description="The spoken language (ISO-639-1 such as 'ko', or a Whisper name); "
            "empty = detect."
        ),
    ] = "",
    prompt: PromptField = "",
    response_format: FormatField = "json",
    temperature: TemperatureField = 0.0,
    timestamp_granularities: Annotated[
        list[Granularity],
        Form(
            alias="timestamp_granularities[]",
            description="segment and/or word (word timestamps); for verbose_json.",
        ),
    ] = [],  # noqa: B006 (FastAPI copies defaults)
    stream: Annotated[
        bool,
        Form(
            description="Server-sent events: transcript.text.delta per segment as it is "
            "decoded, then transcript.text.done."
        ),
    ] = False,
    preset: PresetField = None,
    hotwords: HotwordsField = "",
) -> Response:
    await check_model(request, model)
    granularities: set[str] = set(timestamp_granularities)
    config = build_config(
        language=language,
        prompt=prompt,
        preset=preset,
        hotwords=hotwords,
        word_timestamps="word" in granularities,
        translate=False,
    )
    if stream:
        return await stream_transcription(request, file, config)
    result = await transcribe(request, file, config)
    if isinstance(result, Response):
        return result
    name, transcript = result
    return _answer(name, transcript, response_format, granularities, translation=False)


@router.post(
    "/v1/audio/translations",
    summary="Translate audio into English text (OpenAI-compatible)",
    response_model=None,
    responses=_responses(openai_formats.TranslationResponse, stream=False),
)
async def create_translation(
    request: Request,
    file: FileField,
    model: ModelField = "",
    prompt: PromptField = "",
    response_format: FormatField = "json",
    temperature: TemperatureField = 0.0,
    preset: PresetField = None,
    hotwords: HotwordsField = "",
) -> Response:
    await check_model(request, model)
    config = build_config(
        language="",
        prompt=prompt,
        preset=preset,
        hotwords=hotwords,
        word_timestamps=False,
        translate=True,
    )
    result = await transcribe(request, file, config)
    if isinstance(result, Response):
        return result
    name, transcript = result
    return _answer(name, transcript, response_format, set(), translation=True)


# --- models --------------------------------------------------------------------------------------


def model_object(model_id: str) -> dict[str, Any]:
    return {"id": model_id, "object": "model", "created": MODEL_CREATED, "owned_by": "sayit"}


async def _model_ids(request: Request) -> list[str]:
    info = await gateway.of(request).stub.GetInfo(
        pb.GetInfoRequest(), metadata=gateway.metadata(request), timeout=INFO_TIMEOUT_SECONDS
    )
    request.app.state.served_model = info.model
    return [info.model, WHISPER_ALIAS] if info.model != WHISPER_ALIAS else [info.model]


_MODEL_ERRORS: dict[int | str, dict[str, Any]] = {
    s: errors.ERROR_RESPONSES[s] for s in (401, 404, 429, 500, 503)
}


@router.get(
    "/v1/models",
    summary="The served model and its alias whisper-1 (OpenAI-compatible)",
    response_model=openai_formats.ModelList,
    responses={s: v for s, v in _MODEL_ERRORS.items() if s != 404},
)
async def list_models(request: Request) -> dict[str, Any]:
    ids = await _model_ids(request)
    return {"object": "list", "data": [model_object(i) for i in ids]}


@router.get(
    "/v1/models/{model}",
    summary="One model (OpenAI-compatible)",
    response_model=openai_formats.ModelObject,
    responses=_MODEL_ERRORS,
)
async def retrieve_model(request: Request, model: str) -> dict[str, Any]:
    ids = await _model_ids(request)
    if model not in ids:
        raise errors.ApiError(
            404,
            f"the model {model[:80]!r} does not exist here; this deployment serves "
            + " and ".join(repr(i) for i in ids),
            param="model",
            code="model_not_found",
        )
    return model_object(model)
