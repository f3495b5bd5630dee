"""services.gateway.live_keys: the keys file reloaded on change and on request; a bad new file
refused, the keys before it kept."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from services.common.errors import ConfigError
from services.gateway.keys import keys_entry
from services.gateway.live_keys import LiveKeys


def write(path: Path, *keys: tuple[str, str]) -> None:
    """(key, tenant) entries, written as an editor that saves in place would."""
    path.write_text("".join(keys_entry(key, tenant, key, ["all"]) for key, tenant in keys))


def tenant_of(live: LiveKeys, key: str) -> str | None:
    principal = live.ring.lookup(key)
    return None if principal is None else principal.tenant


def test_a_changed_file_replaces_the_keys(tmp_path: Path) -> None:
    path = tmp_path / "keys.toml"
    write(path, ("k1", "acme"), ("k2", "globex"))
    live = LiveKeys(path, poll_seconds=60)
    assert live.reload("changed") is False  # same content: nothing to do
    write(path, ("k2", "globex"), ("k3", "initech"))
    with capture_logs() as events:
        assert live.reload("changed") is True
    assert (tenant_of(live, "k1"), tenant_of(live, "k2"), tenant_of(live, "k3")) == (
        None,
        "globex",
        "initech",
    )
    reloaded = [e for e in events if e["event"] == "api_keys_reloaded"]
    assert reloaded and reloaded[0]["added"] == ["k3"] and reloaded[0]["removed"] == ["k1"]


@pytest.mark.parametrize(
    "bad",
    [
        "[[keys]\nname = broken",  # half-written TOML
        '[[keys]]\nname = "x"\nsha256 = "short"\ntenant = "acme"\n',  # a bad entry
        "",  # emptied
        "tenants = 3\n[[keys]]\n",  # a shape the checks do not expect
    ],
)
def test_a_bad_new_file_is_refused_and_the_old_keys_stay(tmp_path: Path, bad: str) -> None:
    path = tmp_path / "keys.toml"
    write(path, ("k1", "acme"))
    live = LiveKeys(path, poll_seconds=60)
    path.write_text(bad)
    with capture_logs() as events:
        assert live.reload("changed") is False
        assert live.reload("changed") is False  # the same bad file is logged once
    assert tenant_of(live, "k1") == "acme"
    refused = [e for e in events if e["event"] == "api_keys_reload_refused"]
    assert len(refused) == 1
    assert refused[0]["log_level"] == "error" and refused[0]["keys_in_force"] == 1
    assert refused[0]["error"].startswith(f"SAYIT_API_KEYS_FILE: {path}")
    # Fixed, it loads.
    write(path, ("k9", "acme"))
    assert live.reload("changed") is True and tenant_of(live, "k9") == "acme"


def test_a_removed_file_keeps_the_keys(tmp_path: Path) -> None:
    path = tmp_path / "keys.toml"
    write(path, ("k1", "acme"))
    live = LiveKeys(path, poll_seconds=60)
    os.unlink(path)
    with capture_logs() as events:
        assert live.reload("changed") is False
    assert tenant_of(live, "k1") == "acme"
    assert any("cannot read" in e.get("error", "") for e in events)


def test_a_bad_first_file_stops_the_start(tmp_path: Path) -> None:
    path = tmp_path / "keys.toml"
    path.write_text("nothing = 1\n")
    with pytest.raises(ConfigError, match="has no \\[\\[keys\\]\\] entries"):
        LiveKeys(path, poll_seconds=60)
    with pytest.raises(ConfigError, match="cannot read"):
        LiveKeys(tmp_path / "missing.toml", poll_seconds=60)


def test_tenant_limits_follow_the_keys_in_force(tmp_path: Path) -> None:
    path = tmp_path / "keys.toml"
    write(path, ("k1", "acme"))
    live = LiveKeys(path, poll_seconds=60)
    limits = live.tenant_limits
    assert dict(limits) == {}
    path.write_text(keys_entry("k1", "acme", "k1", ["all"]) + "[tenants.acme]\nrequest_burst = 7\n")
    live.reload("changed")
    assert limits["acme"].request_burst == 7 and limits.get("globex") is None


async def test_watch_polls_and_answers_a_reload_request(tmp_path: Path) -> None:
    path = tmp_path / "keys.toml"
    write(path, ("k1", "acme"))
    live = LiveKeys(path, poll_seconds=0.05)
    watcher = asyncio.create_task(live.watch())
    try:
        write(path, ("k2", "acme"))
        for _ in range(100):
            if tenant_of(live, "k2"):
                break
            await asyncio.sleep(0.02)
        assert tenant_of(live, "k2") == "acme" and tenant_of(live, "k1") is None
        with capture_logs() as events:
            live.request_reload()
            for _ in range(100):
                if any(e.get("reason") == "SIGHUP" for e in events):
                    break
                await asyncio.sleep(0.02)
        assert [e["event"] for e in events if e.get("reason") == "SIGHUP"] == ["api_keys_reloaded"]
    finally:
        watcher.cancel()
