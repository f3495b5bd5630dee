"""The last guard on what a caller reads: addresses and endpoints cut out of error messages.

Messages are written to be safe (services.common.errors replaces gRPC's own downstream text), so
this only catches what slipped through, e.g. a library's exception text inside a message. What it
cuts is logged by the interceptor with the request id, so nothing is lost to the operator.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit, urlunsplit

HIDDEN = "<internal address>"

# Each pattern names an internal place: a URL with a scheme, a gRPC target, a Unix socket, an
# IPv4 or bracketed IPv6 address (with or without a port), a host:port.
_PATTERNS = (
    r"\b(?:rediss?|unix|postgres(?:ql)?|https?|dns|grpc)://\S+",
    r"\b(?:ipv4|ipv6|unix|unix-abstract|dns):\S+",
    r"\[[0-9a-fA-F:.]*:[0-9a-fA-F:.]*\](?::\d{1,5})?",
    r"\b(?:\d{1,3}\.){3}\d{1,3}(?::\d{1,5})?\b",
    r"(?<![\w:])[0-9a-fA-F]{1,4}(?::[0-9a-fA-F]{1,4})*::(?:[0-9a-fA-F]{1,4}(?::[0-9a-fA-F]{1,4})*)?(?![\w:])",
    r"(?<![\w:])::[0-9a-fA-F]{1,4}(?::[0-9a-fA-F]{1,4})*(?![\w:])",
    r"\b(?:[0-9a-fA-F]{1,4}:){5,7}[0-9a-fA-F]{1,4}\b",
    r"\b(?:localhost|[A-Za-z][\w-]*(?:\.[\w-]+)*):\d{2,5}\b",
)
_ADDRESS = re.compile("|".join(f"(?:{p})" for p in _PATTERNS))


def redact(message: str) -> str:
    """`message` with every address-like part replaced by a placeholder."""
    return _ADDRESS.sub(HIDDEN, message)


def has_address(message: str) -> bool:
    return _ADDRESS.search(message) is not None


def hide_password(url: str) -> str:
    """A connection URL fit for logs: "redis://worker:s3cret@host:6379/0" ->
    "redis://worker:***@host:6379/0" (the user stays, to tell whose connection it is)."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    user = f"{parts.username}:" if parts.username else ":"
    host = parts.netloc.rpartition("@")[2]
    return urlunsplit(parts._replace(netloc=f"{user}***@{host}"))
