"""The edge's ASGI application: routes, error handling, bounds."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from services.common.correlation import is_valid_id
from services.http_edge import errors, jobs, openai_audio, openai_models
from services.http_edge.config import HttpEdgeSettings
from services.http_edge.gateway import Gateway
from services.http_edge.limits import BodyLimit, StreamSlots
from services.http_edge.metrics import RequestMetrics

VERSION = "1"
REQUEST_ID_HEADER = "x-request-id"


class RequestIds:
    """ASGI middleware: every request has an id (the caller's X-Request-Id when valid, else a
    new one), passed to the gateway and echoed in the response's X-Request-Id."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        sent = dict(scope.get("headers", ())).get(REQUEST_ID_HEADER.encode(), b"").decode("latin-1")
        request_id = sent if sent and is_valid_id(sent) else uuid.uuid4().hex
        scope.setdefault("state", {})["request_id"] = request_id

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [h for h in message.get("headers", []) if h[0] != b"x-request-id"]
                headers.append((b"x-request-id", request_id.encode()))
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_id)


def _answers_400_not_422(app: FastAPI) -> None:
    """The OpenAPI document without FastAPI's automatic 422: a bad parameter is answered 400
    in OpenAI's error shape (errors.install), which every route documents."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            document = generate()
            for path in document.get("paths", {}).values():
                for operation in path.values():
                    operation.get("responses", {}).pop("422", None)
            schemas = document.get("components", {}).get("schemas", {})
            for name in ("HTTPValidationError", "ValidationError"):
                schemas.pop(name, None)
            app.openapi_schema = document
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def create_app(settings: HttpEdgeSettings, gateway: Gateway | None = None) -> FastAPI:
    """The application; `gateway` None connects to SAYIT_GATEWAY_ADDR at startup."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        own = gateway is None
        app.state.gateway = gateway or Gateway.connect(settings.gateway_addr, settings.client_tls)
        try:
            yield
        finally:
            if own:
                await app.state.gateway.close()

    app = FastAPI(
        title="SayIt HTTP API",
        version=VERSION,
        description="OpenAI-compatible audio transcription and SayIt's jobs over HTTP. "
        "Authenticate with `Authorization: Bearer <API key>`.",
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.streams = StreamSlots(settings.http_max_open_streams)
    errors.install(app)
    app.include_router(openai_audio.router)
    app.include_router(openai_models.router)
    app.include_router(jobs.router)

    @app.get("/healthz", include_in_schema=False)
    async def healthz() -> Response:
        return Response("ok\n", media_type="text/plain")

    @app.get("/readyz", include_in_schema=False)
    async def readyz(request: Request) -> Response:
        # Ready when the gateway answers (GetInfo needs no key).
        from sayit.speech.v1 import speech_service_pb2 as pb

        await request.app.state.gateway.stub.GetInfo(pb.GetInfoRequest(), timeout=2.0)
        return Response("ok\n", media_type="text/plain")

    _answers_400_not_422(app)
    app.add_middleware(BodyLimit, limit=settings.http_max_body_bytes)
    app.add_middleware(RequestIds)
    # Outermost: a request refused before routing (413) is counted too.
    app.add_middleware(RequestMetrics)
    return app
