"""A job's events as server-sent events: a WatchJob call read one message ahead, framed as
`id: <sequence>`, `event: <type>`, `data: <JobEvent JSON>`, with a comment while the job is quiet
and the gRPC call cancelled as soon as the HTTP client goes away."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from typing import Any

import grpc
from starlette.responses import StreamingResponse
from starlette.types import Receive, Scope, Send

from services.common import logs
from services.http_edge import errors, schemas, sse

# How long a new stream waits for its first event before the response starts: an error the
# gateway answers at once (unknown job, bad key) becomes that HTTP status, not an error event.
OPEN_WAIT_SECONDS = 1.0
MAX_SEQUENCE = 2**63 - 1
LAST_EVENT_ID = "Last-Event-ID"
PARAMS = {"name": "id", "after_sequence": "after"}

_log = logs.get_logger("sayit.http_edge")


def resume_after(last_event_id: str | None, after: int | None) -> int:
    """The sequence to resume after: the `Last-Event-ID` header (what an EventSource sends when
    it reconnects) over the `after` query parameter; 0 = from the start."""
    if last_event_id is not None and last_event_id.strip():
        text = last_event_id.strip()
        if not text.isascii() or not text.isdigit() or int(text) > MAX_SEQUENCE:
            raise errors.ApiError(
                400,
                f"{LAST_EVENT_ID} must be the id of an event of this stream (a sequence number "
                f"0..{MAX_SEQUENCE}); got {last_event_id[:40]!r}",
                param=LAST_EVENT_ID,
                code="invalid_argument",
            )
        return int(text)
    return after or 0


def event_frame(message: Any) -> tuple[bytes, bool]:
    """A JobEvent as one server-sent event, and whether it is the job's last."""
    converted = schemas.event(message)
    frame = sse.event(converted.to_json(), name=converted.type, event_id=converted.sequence)
    return frame, converted.type in schemas.TERMINAL_EVENTS


def error_frame(error: grpc.RpcError) -> bytes:
    """A gateway error after the stream started: an `error` event with OpenAI's error body."""
    answer = errors.from_rpc_error(error, PARAMS)
    return sse.event(json.loads(bytes(answer.body)), name="error")


class WatchStream:
    """A WatchJob call (`call.read()` style), read one message ahead so a quiet job can be
    told from a slow read without cancelling the read."""

    def __init__(self, call: Any, heartbeat_seconds: float) -> None:
        self.call = call
        self.heartbeat_seconds = heartbeat_seconds
        self.pending: asyncio.Future[Any] | None = None

    def _read_next(self) -> None:
        self.pending = asyncio.ensure_future(self.call.read())

    async def open(self, wait_seconds: float = OPEN_WAIT_SECONDS) -> None:
        """Start reading; raise the gateway's error if it answers one within `wait_seconds`."""
        self._read_next()
        assert self.pending is not None
        done, _ = await asyncio.wait({self.pending}, timeout=wait_seconds)
        if done and not self.pending.cancelled():
            error = self.pending.exception()
            if error is not None:
                raise error

    async def frames(self) -> AsyncIterator[bytes]:
        """The stream's bytes: events, heartbeats, and an error event if the call fails."""
        while self.pending is not None:
            done, _ = await asyncio.wait({self.pending}, timeout=self.heartbeat_seconds)
            if not done:
                yield sse.comment()
                continue
            try:
                reply = self.pending.result()
            except grpc.RpcError as error:
                self.pending = None
                yield error_frame(error)
                return
            if reply is grpc.aio.EOF:
                self.pending = None
                return
            try:
                frame, last = event_frame(reply.event)
            except ValueError:  # a kind this edge does not know (a newer gateway): skipped
                _log.warning("unknown_job_event", sequence=reply.event.sequence)
                frame, last = b"", False
            if last:
                self.pending = None
            else:
                self._read_next()
            if frame:
                yield frame

    def close(self) -> None:
        if self.pending is not None and not self.pending.done():
            self.pending.cancel()
        self.call.cancel()


class EventStreamResponse(StreamingResponse):
    """text/event-stream that runs `on_close` however the response ends (the stream's end, an
    error, or the client going away while the stream waits)."""

    media_type = sse.MEDIA_TYPE

    def __init__(self, content: AsyncIterator[bytes], on_close: Callable[[], None]) -> None:
        super().__init__(content, headers=sse.HEADERS, media_type=sse.MEDIA_TYPE)
        self._on_close: Callable[[], None] | None = on_close

    def close(self) -> None:
        on_close, self._on_close = self._on_close, None
        if on_close is not None:
            on_close()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            self.close()
