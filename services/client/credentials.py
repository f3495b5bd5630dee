"""Which API key a caller sends when it names none: `SAYIT_API_KEY`, else the development key
`make up` wrote to ./.run/dev-api-key (relative to the working directory, so that it is found
from a checkout of SayIt and nowhere else)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

ENV_VAR = "SAYIT_API_KEY"
DEV_KEY_FILE = Path(".run") / "dev-api-key"


def find_api_key(explicit: str | None, environ: Mapping[str, str], cwd: Path) -> str | None:
    """In order: `explicit` (an empty string means "send no key"), `SAYIT_API_KEY`, the dev key
    file under `cwd`; None when there is none."""
    if explicit is not None:
        return explicit.strip() or None
    from_env = environ.get(ENV_VAR, "").strip()
    if from_env:
        return from_env
    try:
        return (cwd / DEV_KEY_FILE).read_text().strip() or None
    except (OSError, UnicodeDecodeError):
        return None  # no dev key here (or not ours to read): the call goes without one
