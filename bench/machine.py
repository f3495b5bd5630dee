"""What machine and software a bench run measured: stored beside its figures."""

from __future__ import annotations

import os
import platform
import subprocess
import sys
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

from devsupport.kernel import thp_mode
from services.common import hugepages

ROOT = Path(__file__).resolve().parent.parent


def cpu_model(cpuinfo: str) -> str:
    """The first "model name" of a /proc/cpuinfo text ("" when absent, e.g. on ARM)."""
    for line in cpuinfo.splitlines():
        key, _, value = line.partition(":")
        if key.strip() == "model name":
            return value.strip()
    return ""


def total_ram_gib(meminfo: str) -> float:
    for line in meminfo.splitlines():
        if line.startswith("MemTotal:"):
            return round(int(line.split()[1]) / (1024 * 1024), 1)
    return 0.0


def _read(path: str) -> str:
    try:
        return Path(path).read_text()
    except OSError:
        return ""


def _version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return ""


def git_commit() -> str:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True, timeout=10
        )
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=10,
        )
    except OSError:
        return ""
    commit = out.stdout.strip()
    return f"{commit}-dirty" if commit and dirty.stdout.strip() else commit


def describe(*, model: str, model_path: str, threads: int, preset: str) -> dict[str, Any]:
    return {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "cpu_model": cpu_model(_read("/proc/cpuinfo")) or platform.processor(),
        "cores": os.cpu_count() or 0,
        "ram_gib": total_ram_gib(_read("/proc/meminfo")),
        "os": platform.platform(),
        "python": sys.version.split()[0],
        "faster_whisper": _version("faster-whisper"),
        "ctranslate2": _version("ctranslate2"),
        "model": model,
        "model_path": model_path,
        "threads": threads,
        "preset": preset,
        "load_average": [round(x, 2) for x in os.getloadavg()],
        "git_commit": git_commit(),
        # Engine and services alike (services/common/hugepages.py); THP mode "never" voids it.
        "huge_pages": hugepages.active(os.environ),
        "thp_mode": thp_mode(_read("/sys/kernel/mm/transparent_hugepage/enabled")),
    }
