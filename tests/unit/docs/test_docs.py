"""The README stays in step with the code: every setting and make target is documented."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
README = (ROOT / "README.md").read_text()


def test_every_setting_in_the_code_is_in_the_readme() -> None:
    used = set()
    for path in [*ROOT.glob("services/**/*.py"), *ROOT.glob("scripts/*.py")]:
        used |= set(re.findall(r"SAYIT_[A-Z_]+[A-Z]", path.read_text()))
    assert used, "no settings found"
    missing = sorted(v for v in used if f"`{v}`" not in README)
    assert not missing, f"settings missing from the README's table: {missing}"


def test_make_help_lists_the_documented_targets() -> None:
    output = subprocess.run(
        ["make", "-s", "help"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout
    for target in (
        "install",
        "run",
        "up",
        "down",
        "test",
        "proto",
        "proto-check",
        "lint",
        "fmt",
        "clean",
        "eval",
    ):
        assert re.search(rf"\b{re.escape(target)}\b", output), target
        assert f"make {target}" in README or f"`{target}`" in README, target
