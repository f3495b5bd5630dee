"""`make openapi`: write docs/openapi.json, the HTTP edge's OpenAPI document, from the app.

The document is what `services.http_edge.app.create_app(HttpEdgeSettings.from_env({}))` serves
at /openapi.json (default settings, so the committed file does not depend on this machine's
environment), written with sorted keys, two-space indentation and a final newline, so a change
of routes shows as a small diff. `--check` fails when the committed file is not what this writes
now (`make lint` runs it); tests/e2e/http/test_openapi.py checks that the running edge serves
the same document.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from services.http_edge.app import create_app
from services.http_edge.config import HttpEdgeSettings

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "openapi.json"


def document() -> dict[str, Any]:
    """The edge's OpenAPI document with default settings (no gateway is contacted)."""
    schema: dict[str, Any] = create_app(HttpEdgeSettings.from_env({})).openapi()
    return schema


def render(schema: dict[str, Any]) -> str:
    """The stable text of a document: sorted keys, two-space indentation, UTF-8, final newline."""
    return json.dumps(schema, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="fail when the file is stale")
    args = parser.parse_args(argv)
    new = render(document())
    old = DOC.read_text() if DOC.exists() else ""
    name = DOC.relative_to(ROOT)
    if args.check:
        if old != new:
            print(f"{name} is stale against services/http_edge: run make openapi")
            return 1
        print(f"{name} is up to date")
        return 0
    if old != new:
        DOC.write_text(new)
        print(f"wrote {name}")
    else:
        print(f"{name} is up to date")
    return 0


if __name__ == "__main__":
    sys.exit(main())
