"""What the kernel says about this machine, read by bench (its machine description) and by tests
that depend on it."""

from __future__ import annotations


def thp_mode(text: str) -> str:
    """The kernel's transparent huge page mode: the bracketed word of "always [madvise] never"."""
    start, end = text.find("["), text.find("]")
    return text[start + 1 : end] if 0 <= start < end else ""
