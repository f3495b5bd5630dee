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

from pydantic import Field

from services.common.errors import ConfigError
from services.common.settings import Flag, Settings

TUNABLE = "glibc.malloc.hugetlb=1"


class HugePagesSettings(Settings):
    huge_pages: Flag = Field(
        True,
        description="keep the model's memory on transparent huge pages: the process starts "
        "itself again once with `GLIBC_TUNABLES=glibc.malloc.hugetlb=1` (glibc 2.35+; works "
        "where the kernel's THP mode is `madvise` or `always`). Decoding took 6% less time with "
        'it in six of six pairs of fresh processes (`docs/presets.md`, "Huge pages"); '
        "`make bench` gives its raw engine the same. It can cost memory: ~220 MiB more resident "
        "per transcriber on an Intel Xeon (peak 696 vs 470 MiB after a few short clips), none "
        "on an AMD EPYC where the kernel backed only ~130 MiB of the weights with huge pages "
        "(still ~6% faster); set `false` where memory is tighter than CPU. The `model_loaded` "
        "log line says how many MiB landed on huge pages",
    )


def enabled(environ: Mapping[str, str]) -> bool:
    return HugePagesSettings.from_env(environ).huge_pages


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


def reexec_with_huge_pages(module: str, environ: Mapping[str, str]) -> None:
    """Start `python -m module` again (same pid, same arguments) with the tunable, if needed.
    Called first thing in a __main__, with its environment."""
    changed = environment_for_huge_pages(environ)
    if changed is not None:
        sys.stdout.flush()
        sys.stderr.flush()
        os.execve(sys.executable, [sys.executable, "-m", module, *sys.argv[1:]], changed)


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
