"""Finding internal addresses in what a public caller reads. Written apart from
services.common.redact on purpose: the tests must not check the code with itself."""

from __future__ import annotations

import re

LEAKS = re.compile(
    r"redis://|rediss://|\bipv4:|\bipv6:|\bunix:"
    r"|\b\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3}\b"  # IPv4
    r"|\[[0-9a-fA-F:]*:[0-9a-fA-F:]*\]"  # bracketed IPv6
    r"|(?<![\w:])(?:[0-9a-fA-F]{1,4})?::[0-9a-fA-F]{0,4}(?![\w:])"  # compressed IPv6
    r"|\blocalhost\b"
    r"|\b[A-Za-z][\w.-]*:\d{2,5}\b",  # host:port
    re.IGNORECASE,
)


def leaks(message: str) -> list[str]:
    """The address-like parts of `message` (empty when it is clean)."""
    return [match.group(0) for match in LEAKS.finditer(message)]
