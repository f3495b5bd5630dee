"""Resident memory of a process from /proc/<pid>/status (Linux; psutil is not a dependency)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

KIB = 1024
MIB = 1024 * 1024


@dataclass(frozen=True)
class Memory:
    rss_mib: float  # VmRSS: resident now
    peak_mib: float  # VmHWM: the most it was ever resident


def parse_status(text: str) -> Memory:
    """VmRSS and VmHWM of a /proc/<pid>/status text (both in kB there), in MiB."""
    values: dict[str, float] = {}
    for line in text.splitlines():
        key, _, rest = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            number, _, unit = rest.strip().partition(" ")
            if unit.strip().lower() != "kb":
                raise ValueError(f"unexpected unit in {line!r}")
            values[key] = int(number) * KIB / MIB
    if "VmRSS" not in values or "VmHWM" not in values:
        raise ValueError("VmRSS/VmHWM missing (is this a kernel thread or a dead process?)")
    return Memory(rss_mib=values["VmRSS"], peak_mib=values["VmHWM"])


def read(pid: int) -> Memory:
    return parse_status(Path(f"/proc/{pid}/status").read_text())
