"""devsupport.kernel: reading the kernel's transparent huge page mode."""

from __future__ import annotations

from devsupport.kernel import thp_mode


def test_thp_mode_is_the_bracketed_word() -> None:
    assert thp_mode("always [madvise] never\n") == "madvise"
    assert thp_mode("[always] madvise never") == "always"
    assert thp_mode("") == ""
