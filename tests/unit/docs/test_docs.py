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


def test_the_readme_stays_short() -> None:
    # The README is for users; reference material and measurements live in docs/.
    lines = len(README.splitlines())
    assert lines <= 350, f"README.md has {lines} lines; move reference material to docs/"


# [text](target) outside code; the target ends at whitespace or the closing parenthesis.
_LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")


def _relative_links(text: str) -> list[str]:
    """The link targets of a markdown text that are paths, not URLs or in-page anchors."""
    text = re.sub(r"```.*?```", "", text, flags=re.DOTALL)  # code blocks are not links
    text = re.sub(r"`[^`\n]*`", "", text)
    targets = [t.split("#", 1)[0] for t in _LINK.findall(text)]
    return [t for t in targets if t and not re.match(r"[a-z][a-z0-9+.-]*:", t)]


def test_relative_links_in_the_docs_point_at_files_that_exist() -> None:
    pages = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
    assert len(pages) > 1, "no docs/*.md found"
    broken = [
        f"{page.relative_to(ROOT)}: {target}"
        for page in pages
        for target in _relative_links(page.read_text())
        if not (page.parent / target).exists()
    ]
    assert not broken, f"links to files that do not exist: {broken}"


def test_the_link_finder_sees_relative_links_only() -> None:
    text = (
        "[a](docs/api.md#errors) [b](https://example.com) [c](#layout) "
        "`[d](not/a/link.md)`\n```\n[e](in/code.md)\n```\n[f](../README.md)"
    )
    assert _relative_links(text) == ["docs/api.md", "../README.md"]
