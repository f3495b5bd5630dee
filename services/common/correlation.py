"""Request and job ids that arrive in call metadata, checked before they are logged, stored (a
job record keeps its request id) or forwarded to the next service.

An id is at most 128 characters from [A-Za-z0-9._:-]: UUIDs, ULIDs, hex, `trace:span` pairs and
the like pass unchanged. Anything else (spaces, quotes, backslashes, control characters, text
too long) could forge or break log lines, so it never gets that far:

- A caller's `x-request-id` that breaks the rule is replaced by a generated id rather than
  refused: the id is a convenience for finding log lines, not part of the request, and a proxy
  or SDK adding an odd one should not make every call fail. The caller learns the id used from
  the response's `x-request-id` trailing metadata (and UNAVAILABLE / INTERNAL messages name it).
- `x-sayit-job-id` binds log lines to a job, so only SayIt's services set it for each other. The
  public edge (the gateway) ignores it (a caller could otherwise file its lines under another
  tenant's job) and binds the job id it learns itself; internal services drop a value that
  breaks the rule.
"""

from __future__ import annotations

import re
import uuid

MAX_ID_CHARS = 128
_ID = re.compile(r"[A-Za-z0-9._:-]+")


def is_valid_id(value: str) -> bool:
    return 0 < len(value) <= MAX_ID_CHARS and _ID.fullmatch(value) is not None


def new_request_id() -> str:
    return uuid.uuid4().hex[:16]


def why_invalid(value: str) -> str:
    """Why `value` is refused, for the log line (which never shows the value itself)."""
    if not value:
        return "empty"
    if len(value) > MAX_ID_CHARS:
        return f"longer than {MAX_ID_CHARS} characters"
    return "characters outside [A-Za-z0-9._:-]"


def request_id(sent: str | None) -> tuple[str, str | None]:
    """The request id to use for a call whose caller sent `sent` (None = no header), and why the
    caller's was replaced (None when it was kept or there was none)."""
    if sent is None:
        return new_request_id(), None
    if is_valid_id(sent):
        return sent, None
    return new_request_id(), why_invalid(sent)
