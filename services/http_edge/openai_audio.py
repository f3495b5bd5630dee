"""OpenAI's audio API: POST /v1/audio/transcriptions and /v1/audio/translations.

Only the HTTP side lives here (the form fields, their documentation, rendering a transcript in
the asked `response_format`), so the routes read like OpenAI's reference; the gateway calls
are in openai_calls, the error answers in openai_answers, the model names in openai_models.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, File, Form, Request, Response, UploadFile
from fastapi.responses import JSONResponse

from sayit.common.v1 import transcription_pb2 as tpb
from services.http_edge import errors, openai_formats, sse
from services.http_edge.openai_answers import JOB_HEADER
from services.http_edge.openai_calls import build_config, stream_transcription, transcribe
from services.http_edge.openai_formats import Granularity, ResponseFormat
from services.http_edge.openai_models import WHISPER_ALIAS, check_model

router = APIRouter(tags=["OpenAI audio"])

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
