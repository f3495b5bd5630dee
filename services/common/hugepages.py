"""Model weights on transparent huge pages.

glibc's malloc backs its large allocations with transparent huge pages when GLIBC_TUNABLES holds
`glibc.malloc.hugetlb=1` (glibc 2.35+), on kernels whose THP mode is `madvise` (the common
default) or `always`. With the ~400 MB of int8 weights on huge pages, decoding took 6% less
time in every one of six pairs of fresh processes (docs/presets.md, "Huge pages"). glibc reads
its tunables only when a process starts, so a process that should have them and does not
re-executes itself once, before doing anything else.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping

from services.common.config import Env
from services.common.errors import ConfigError

TUNABLE = "glibc.malloc.hugetlb=1"
SETTING = "SAYIT_HUGE_PAGES"


def enabled(environ: Mapping[str, str]) -> bool:
    return Env(environ).get_bool(SETTING, True)


def active(environ: Mapping[str, str]) -> bool:
    return TUNABLE in environ.get("GLIBC_TUNABLES", "").split(":")


def environment_for_huge_pages(environ: Mapping[str, str]) -> dict[str, str] | None:
    """The environment to start again with, or None when nothing is to change: the tunable is
    already set, SAYIT_HUGE_PAGES is off, or its value is bad (the config loader reports it)."""
    try:
        if not enabled(environ) or active(environ):
            return None
    except ConfigError:
        return None
    tunables = environ.get("GLIBC_TUNABLES", "")
    return {**environ, "GLIBC_TUNABLES": f"{tunables}:{TUNABLE}" if tunables else TUNABLE}


def reexec_with_huge_pages(module: str) -> None:
    """Start `python -m module` again (same pid, same arguments) with the tunable, if needed."""
    environ = environment_for_huge_pages(os.environ)
    if environ is not None:
        sys.stdout.flush()
        sys.stderr.flush()
        os.execve(sys.executable, [sys.executable, "-m", module, *sys.argv[1:]], environ)


def anon_huge_pages_mib(pid: int | str = "self") -> float | None:
    """How much of a process's memory sits on transparent huge pages (None: unknown here)."""
    try:
        with open(f"/proc/{pid}/smaps_rollup") as rollup:
            for line in rollup:
                if line.startswith("AnonHugePages:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None
