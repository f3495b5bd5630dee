"""The docs stay in step with the code: every setting and make target is documented."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

# The repository root, wherever under tests/ this file lives.
ROOT = next(p for p in Path(__file__).resolve().parents if (p / "pyproject.toml").exists())
README = (ROOT / "README.md").read_text()
CONFIGURATION = (ROOT / "docs" / "configuration.md").read_text()


def _settings_table() -> str:
    """The rows of docs/configuration.md's "## Settings" section."""
    section = CONFIGURATION.split("\n## Settings\n", 1)[1].split("\n## ", 1)[0]
    return "\n".join(line for line in section.splitlines() if line.startswith("|"))


def test_every_setting_in_the_code_is_in_the_settings_table() -> None:
    used = set()
    for path in [*ROOT.glob("services/**/*.py"), *ROOT.glob("scripts/*.py")]:
        used |= set(re.findall(r"SAYIT_[A-Z_]+[A-Z]", path.read_text()))
    assert used, "no settings found"
    table = _settings_table()
    missing = sorted(v for v in used if f"`{v}`" not in table)
    assert not missing, f"settings missing from docs/configuration.md's table: {missing}"


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
