"""OpenAI's model names: GET /v1/models and /v1/models/{model}, and the check of a request's
`model`. The gateway serves one model; OpenAI's `whisper-1` is accepted as its alias, so the
openai SDK's default works unchanged.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from sayit.speech.v1 import speech_service_pb2 as pb
from services.http_edge import errors, gateway, openai_formats

router = APIRouter(tags=["OpenAI audio"])

WHISPER_ALIAS = "whisper-1"
MODEL_CREATED = 0  # OpenAI's `created` (a Unix time); SayIt's served model has none.
INFO_TIMEOUT_SECONDS = 5.0


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
