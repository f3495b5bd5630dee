"""The docs stay in step with the code: every setting and make target is documented."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

from scripts import settings_doc

# The repository root, wherever under tests/ this file lives.
ROOT = next(p for p in Path(__file__).resolve().parents if (p / "pyproject.toml").exists())
README = (ROOT / "README.md").read_text()
CONFIGURATION = (ROOT / "docs" / "configuration.md").read_text()


# A variable named in code: SAYIT_ and capitals, not a pattern such as SAYIT_TLS_* or SAYIT_*.
_VARIABLE = re.compile(r"(?<![A-Z0-9_])SAYIT_[A-Z0-9_]*[A-Z0-9](?![A-Z0-9_*])")


def test_the_settings_table_is_what_make_docs_writes() -> None:
    section = CONFIGURATION.split("\n## Settings\n", 1)[1].split("\n## ", 1)[0]
    assert settings_doc.current(section) == settings_doc.table(), (
        "docs/configuration.md's settings table is stale: run make docs"
    )


def test_every_variable_the_code_names_is_a_setting() -> None:
    """A SAYIT_* variable cannot be read, set or mentioned without a typed, documented field."""
    named: dict[str, set[str]] = {}
    for folder in ("services", "scripts", "devsupport", "bench"):
        for path in (ROOT / folder).rglob("*.py"):
            for variable in _VARIABLE.findall(path.read_text()):
                named.setdefault(variable, set()).add(str(path.relative_to(ROOT)))
    assert len(named) > 20, "too few variables found: is the pattern right?"
    settings = settings_doc.rows()
    unknown = {v: sorted(paths) for v, paths in named.items() if v not in settings}
    assert not unknown, f"SAYIT_* variables that are no field of a settings class: {unknown}"


def test_the_variable_pattern() -> None:
    text = (
        "SAYIT_GATEWAY_ADDR, SAYIT_TLS_* and SAYIT_* or `SAYIT_<SERVICE>_METRICS_ADDR`, X_SAYIT_Y"
    )
    assert _VARIABLE.findall(text) == ["SAYIT_GATEWAY_ADDR"]


def test_every_setting_has_a_description_and_a_reader() -> None:
    for row in settings_doc.rows().values():
        assert row.meanings and all(row.meanings), row.variable
        assert row.used_by and all(row.used_by), row.variable


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
        "docs",
        "openapi",
        "arm64-check",
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
