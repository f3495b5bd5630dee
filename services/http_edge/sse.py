"""Server-sent events (text/event-stream) framing."""

from __future__ import annotations

import json
from typing import Any

MEDIA_TYPE = "text/event-stream"
# Proxies (nginx) must not buffer an event stream.
HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}


def event(data: Any, *, name: str | None = None, event_id: str | int | None = None) -> bytes:
    """One event: `data` as JSON (a str is sent as is), with optional `event:` and `id:`."""
    text = data if isinstance(data, str) else json.dumps(data, ensure_ascii=False)
    lines = []
    if event_id is not None:
        lines.append(f"id: {event_id}")
    if name:
        lines.append(f"event: {name}")
    lines.extend(f"data: {line}" for line in text.split("\n"))
    return ("\n".join(lines) + "\n\n").encode()


def comment(text: str = "keepalive") -> bytes:
    return f": {text}\n\n".encode()
