"""When a process re-executes itself to get glibc's huge-page tunable (pure environment logic)."""

from __future__ import annotations

import pytest

from services.common import hugepages

TUNABLE = "glibc.malloc.hugetlb=1"


def test_adds_the_tunable_when_missing() -> None:
    env = hugepages.environment_for_huge_pages({"PATH": "/bin"})
    assert env == {"PATH": "/bin", "GLIBC_TUNABLES": TUNABLE}


def test_keeps_other_tunables() -> None:
    env = hugepages.environment_for_huge_pages({"GLIBC_TUNABLES": "glibc.malloc.arena_max=2"})
    assert env is not None
    assert env["GLIBC_TUNABLES"] == f"glibc.malloc.arena_max=2:{TUNABLE}"


@pytest.mark.parametrize(
    "environ",
    [
        {"GLIBC_TUNABLES": TUNABLE},  # already started with it: no second exec, no loop
        {"GLIBC_TUNABLES": f"glibc.malloc.arena_max=2:{TUNABLE}"},
        {"SAYIT_HUGE_PAGES": "false"},  # turned off
        {"SAYIT_HUGE_PAGES": "maybe"},  # bad: start as is, the config loader says what is wrong
    ],
)
def test_nothing_to_change(environ: dict[str, str]) -> None:
    assert hugepages.environment_for_huge_pages(environ) is None


def test_active_reads_whole_tunables_only() -> None:
    assert hugepages.active({"GLIBC_TUNABLES": TUNABLE})
    assert not hugepages.active({"GLIBC_TUNABLES": "glibc.malloc.hugetlb=0"})
    assert not hugepages.active({})
