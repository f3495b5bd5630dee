"""`make docs`: write docs/configuration.md's settings table from the settings classes.

Every SAYIT_* variable is a field of the settings class of each program that reads it (SETTINGS
below). The table has one row per variable: its default, the programs that read it (the classes'
`used_by`) and its meaning (the field's description; where programs read it with different
meanings, each one's, joined). `--check` fails when the table in the file is not what this
writes now; tests/unit/docs/test_docs.py checks the same.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from devsupport.settings import (
    BenchSettings,
    DemoSettings,
    EvalClipsSettings,
    EvalGatewaySettings,
    FuzzSettings,
    LoadSettings,
    MeshSettings,
)
from services.cli.config import CliSettings
from services.common.healthcheck import HealthcheckSettings
from services.common.settings import PREFIX, Settings
from services.gateway.config import GatewaySettings
from services.http_edge.config import HttpEdgeSettings
from services.scheduler.config import SchedulerSettings
from services.transcriber.config import TranscriberSettings
from services.worker.config import WorkerSettings

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "configuration.md"
BEGIN = "<!-- settings table: written by `make docs` from the settings classes; do not edit -->"
END = "<!-- end of settings table -->"

# Every program that reads SAYIT_* variables, in the table's order.
SETTINGS: tuple[type[Settings], ...] = (
    GatewaySettings,
    SchedulerSettings,
    TranscriberSettings,
    WorkerSettings,
    HttpEdgeSettings,
    CliSettings,
    HealthcheckSettings,
    MeshSettings,
    DemoSettings,
    LoadSettings,
    EvalGatewaySettings,
    BenchSettings,
    EvalClipsSettings,
    FuzzSettings,
)
SERVICES = ("gateway", "scheduler", "transcriber", "worker")


@dataclass
class Row:
    variable: str
    defaults: dict[str, list[str]] = field(default_factory=dict)  # default -> readers
    used_by: list[str] = field(default_factory=list)
    meanings: list[str] = field(default_factory=list)

    def markdown(self) -> str:
        first, *others = self.defaults
        default = first + "".join(f" ({', '.join(self.defaults[d])}: {d})" for d in others)
        used_by = self.used_by
        if all(s in used_by for s in SERVICES):
            used_by = ["all services", *(u for u in used_by if u not in SERVICES)]
        cells = [f"`{self.variable}`", default, ", ".join(used_by), "; ".join(self.meanings)]
        return "| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |"


def _fields(cls: type[Settings]) -> Iterator[str]:
    """A class's fields: its own first, then those of its bases, nearest first."""
    seen = set()
    for klass in cls.__mro__:
        for name in vars(klass).get("__annotations__", {}):
            if name in cls.model_fields and name not in seen:
                seen.add(name)
                yield name


def _default(cls: type[Settings], name: str) -> str:
    info = cls.model_fields[name]
    extra = info.json_schema_extra
    if isinstance(extra, dict) and "doc_default" in extra:
        return str(extra["doc_default"])
    value: Any = info.default
    if value is None or value == "":
        return "—"
    if isinstance(value, bool):
        return f"`{str(value).lower()}`"
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, frozenset):
        value = ",".join(sorted(value))
    elif isinstance(value, tuple):
        value = ",".join(value)
    return f"`{value}`"


def rows() -> dict[str, Row]:
    """Variable -> its row, in table order."""
    table: dict[str, Row] = {}
    for cls in SETTINGS:
        for name in _fields(cls):
            variable = cls.env_name(name)
            if not variable.startswith(PREFIX):
                continue  # XDG_CACHE_HOME and the like: not SayIt's to document
            row = table.setdefault(variable, Row(variable))
            row.defaults.setdefault(_default(cls, name), []).append(cls.used_by)
            if cls.used_by not in row.used_by:
                row.used_by.append(cls.used_by)
            meaning = cls.model_fields[name].description
            assert meaning, f"{cls.__name__}.{name} has no description"
            if meaning not in row.meanings:
                row.meanings.append(meaning)
    return table


def table() -> str:
    lines = ["| variable | default | used by | meaning |", "|---|---|---|---|"]
    lines += [row.markdown() for row in rows().values()]
    return "\n".join([BEGIN, *lines, END])


def current(text: str) -> str:
    """The table between the markers of a document."""
    start, end = text.find(BEGIN), text.find(END)
    if start < 0 or end < start:
        raise SystemExit(f"{DOC}: the markers {BEGIN!r} and {END!r} are missing")
    return text[start : end + len(END)]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="fail when the table is stale")
    args = parser.parse_args(argv)
    text = DOC.read_text()
    old, new = current(text), table()
    if args.check:
        if old != new:
            print(f"{DOC.relative_to(ROOT)}: the settings table is stale: run make docs")
            return 1
        print(f"{DOC.relative_to(ROOT)}: the settings table is up to date")
        return 0
    if old != new:
        DOC.write_text(text.replace(old, new))
        print(f"wrote the settings table of {DOC.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
