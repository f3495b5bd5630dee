"""services.client.credentials and the clients that use it: an explicit key, SAYIT_API_KEY, then
./.run/dev-api-key (the key `make up` made), relative to the working directory."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from services.client import SayItClient
from services.client.credentials import find_api_key

ROOT = next(p for p in Path(__file__).resolve().parents if (p / "pyproject.toml").exists())


@pytest.fixture
def checkout(tmp_path: Path) -> Path:
    """A directory where `make up` has run: .run/dev-api-key holds the dev key."""
    (tmp_path / ".run").mkdir()
    (tmp_path / ".run" / "dev-api-key").write_text("sayit_devkey\n")
    return tmp_path


def test_the_order_is_explicit_then_environment_then_dev_key_file(
    checkout: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    env = {"SAYIT_API_KEY": " sayit_fromenv "}
    assert find_api_key("sayit_given", env, checkout) == "sayit_given"
    assert find_api_key(None, env, checkout) == "sayit_fromenv"
    assert find_api_key(None, {"SAYIT_API_KEY": "  "}, checkout) == "sayit_devkey"
    assert find_api_key(None, {}, checkout) == "sayit_devkey"
    # "" says "no key": nothing is looked up.
    assert find_api_key("", env, checkout) is None
    elsewhere = tmp_path_factory.mktemp("elsewhere")
    assert find_api_key(None, {}, elsewhere) is None


@pytest.fixture
def in_checkout(checkout: Path) -> Iterator[Path]:
    before = Path.cwd()
    os.chdir(checkout)
    try:
        yield checkout
    finally:
        os.chdir(before)


def test_the_python_client_finds_the_dev_key(
    in_checkout: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("SAYIT_API_KEY", raising=False)
    with SayItClient("127.0.0.1:9") as client:
        assert ("authorization", "Bearer sayit_devkey") in client._md(None)
    monkeypatch.setenv("SAYIT_API_KEY", "sayit_fromenv")
    with SayItClient("127.0.0.1:9") as client:
        assert ("authorization", "Bearer sayit_fromenv") in client._md(None)
    with SayItClient("127.0.0.1:9", api_key="sayit_given") as client:
        assert client._md("r1") == (
            ("authorization", "Bearer sayit_given"),
            ("x-request-id", "r1"),
        )
    with SayItClient("127.0.0.1:9", api_key="") as client:
        assert client._md(None) == ()
