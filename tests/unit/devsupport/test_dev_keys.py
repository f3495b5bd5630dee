"""devsupport.dev_keys: the dev tenant's key made once, private, reused; a keys file that is
there already is never rewritten."""

from __future__ import annotations

import stat
from pathlib import Path

from devsupport import dev_keys
from services.gateway.keys import ALL_RPCS, load_keyring


def test_made_once_private_and_reused(tmp_path: Path) -> None:
    made = dev_keys.ensure(tmp_path / "run")
    assert made.key and made.key.startswith("sayit_")
    key_file = tmp_path / "run" / "dev-api-key"
    assert key_file.read_text() == made.key + "\n"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    # Hashes only: readable by the gateway of compose, which runs as another user.
    assert stat.S_IMODE(made.keys_file.stat().st_mode) == 0o644
    principal = load_keyring(made.keys_file).lookup(made.key)
    assert principal is not None
    assert (principal.tenant, principal.key_name, principal.rpcs) == ("dev", "dev", ALL_RPCS)
    assert made.key not in made.keys_file.read_text()  # only its hash
    assert dev_keys.ensure(tmp_path / "run") == made


def test_a_keys_file_of_ones_own_is_kept(tmp_path: Path) -> None:
    own = tmp_path / "api-keys.toml"
    own.write_text("# mine\n")
    found = dev_keys.ensure(tmp_path)
    assert found == dev_keys.DevKeys(own, None)
    assert own.read_text() == "# mine\n"


def test_metadata() -> None:
    assert dev_keys.metadata("k") == [("authorization", "Bearer k")]
    assert dev_keys.metadata(None) == []


def test_the_command_makes_them_where_told(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    assert dev_keys.main([str(tmp_path / "run")]) == 0
    out = capsys.readouterr().out
    assert f"keys file: {tmp_path / 'run' / 'api-keys.toml'}" in out
    assert f"dev key: {tmp_path / 'run' / 'dev-api-key'}" in out
    assert (tmp_path / "run" / "dev-api-key").read_text().startswith("sayit_")
