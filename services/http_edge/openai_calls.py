"""How an audio request becomes calls of the gateway's public API, with the caller's key.

Kept apart from the routes so the flows (inline or upload, wait or stream, the caller
disconnecting) can be read and tested without the form handling. A file up to
SAYIT_HTTP_INLINE_BYTES goes by Transcribe (TranscribeWithProgress for `stream=true`), a larger
one by UploadJob in 1 MiB chunks from the spooled upload. Audio the gateway queues is a job,
followed with WatchJob for up to SAYIT_HTTP_TRANSCRIPTION_WAIT_SECONDS. A caller who
disconnects cancels the edge's gRPC call (a queued job goes on; its other watchers are not
affected).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, TypeVar

import grpc
from fastapi import Request, Response, UploadFile
from fastapi.responses import JSONResponse, StreamingResponse

from sayit.common.v1 import audio_pb2, event_pb2
from sayit.common.v1 import transcription_pb2 as tpb
from sayit.speech.v1 import speech_service_pb2 as pb
from services.http_edge import audio_input, errors, gateway, openai_formats, openai_languages, sse
from services.http_edge.openai_answers import (
    JOB_HEADER,
    cancelled_response,
    error_dict,
    job_error_response,
    job_id,
    rpc_error_response,
    still_running_response,
)

_PRESETS = {"accurate": tpb.PRESET_ACCURATE, "fast": tpb.PRESET_FAST}

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
    upload = stub.UploadJob(
        audio_input.upload_requests(header, audio_input.chunks(file)), metadata=metadata
    )
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
    upload = stub.UploadJob(
        audio_input.upload_requests(header, audio_input.chunks(file)), metadata=metadata
    )
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
                yield sse.event(error_dict(job_error_response(name, event.failed.error)))
                return
            elif kind == "cancelled":
                yield sse.event(error_dict(cancelled_response(name, event.cancelled.reason)))
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
        yield sse.event(error_dict(rpc_error_response(error, name)))
    finally:
        if pending is not None:
            pending.cancel()
        call.cancel()
        release()
