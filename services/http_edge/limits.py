"""Bounds the edge keeps itself: the request body's size (refused before it is read whole) and
the number of open event streams. Per-tenant limits are the gateway's."""

from __future__ import annotations

from fastapi import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from services.http_edge import errors, metrics


class BodyTooLarge(HTTPException):
    # An HTTPException, so FastAPI's body parsing passes it on instead of answering 400.
    def __init__(self, limit: int) -> None:
        super().__init__(413, f"the request body is over the {limit}-byte limit")


class BodyLimit:
    """ASGI middleware: a `Content-Length` over the limit is answered 413 before any byte is
    read; a body that grows past it (chunked) fails the read with 413."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for name, value in scope.get("headers", ()):
            if name == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    declared = -1
                if declared > self.limit:
                    answer = errors.response(
                        413,
                        str(BodyTooLarge(self.limit).detail),
                        code="body_too_large",
                        headers={"Connection": "close"},
                    )
                    await answer(scope, receive, send)
                    return
        seen = 0

        async def counted() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.limit:
                    raise BodyTooLarge(self.limit)
            return message

        await self.app(scope, counted, send)


class StreamSlots:
    """At most `limit` event streams open at once on this edge. `take()` when a stream is
    about to open (429 with Retry-After when full), `release()` in the stream's `finally`."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.open = 0

    def take(self) -> None:
        if self.open >= self.limit:
            raise errors.ApiError(
                429,
                f"this HTTP edge has {self.limit} event streams open, its limit; try again shortly",
                code="too_many_streams",
                headers=errors.retry_after_headers(1.0),
            )
        self.open += 1
        metrics.OPEN_STREAMS.inc()

    def release(self) -> None:
        self.open -= 1
        metrics.OPEN_STREAMS.dec()
