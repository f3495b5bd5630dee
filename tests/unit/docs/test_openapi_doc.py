"""docs/openapi.json is what `make openapi` writes from the HTTP edge's routes, and the check that
`make lint` runs fails when it is not."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from scripts import openapi


def test_the_committed_document_is_what_make_openapi_writes() -> None:
    text = openapi.DOC.read_text()
    assert text == openapi.render(openapi.document()), "docs/openapi.json is stale: make openapi"
    document = json.loads(text)
    assert document["info"]["title"] == "SayIt HTTP API"
    assert document["openapi"].startswith("3.")


def test_check_fails_on_a_stale_file_and_writing_fixes_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    stale = tmp_path / "docs" / "openapi.json"
    stale.parent.mkdir()
    stale.write_text('{"paths": {}}\n')
    monkeypatch.setattr(openapi, "ROOT", tmp_path)
    monkeypatch.setattr(openapi, "DOC", stale)
    assert openapi.main(["--check"]) == 1
    assert "stale" in capsys.readouterr().out
    assert openapi.main([]) == 0
    assert openapi.main(["--check"]) == 0
    # Stable text: sorted keys, two-space indentation, one final newline.
    text = stale.read_text()
    assert text.endswith("}\n") and not text.endswith("\n\n")
    assert text == json.dumps(json.loads(text), indent=2, sort_keys=True, ensure_ascii=False) + "\n"
