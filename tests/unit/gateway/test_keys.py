"""services.gateway.keys (the keys file and its CLI) and services.gateway.auth (bearer keys)."""

from __future__ import annotations

import hashlib
from pathlib import Path

import grpc
import pytest

from services.common.errors import ConfigError, PermissionDenied, Unauthenticated
from services.gateway import keys
from services.gateway.auth import UNKNOWN, Authenticator, bearer_key
from services.gateway.keys import ALL_RPCS, load_keyring


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "keys.toml"
    path.write_text(text)
    return path


def entry(key: str, tenant: str = "acme", roles: str = '["all"]', name: str = "k") -> str:
    return (
        f'[[keys]]\nname = "{name}"\nsha256 = "{keys.hash_key(key)}"\n'
        f'tenant = "{tenant}"\nroles = {roles}\n'
    )


def test_hash_is_sha256_of_the_stripped_key() -> None:
    assert keys.hash_key("abc\n") == hashlib.sha256(b"abc").hexdigest()
    made = keys.new_key()
    assert made.startswith("sayit_") and len(made) > 40 and made != keys.new_key()


def test_keyring_maps_keys_to_tenants_and_rights(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        entry("k1", "acme")
        + entry("k2", "acme", '["read", "CancelJob"]', "reader")
        + entry("k3", "globex", '["transcribe"]')
        + "[tenants.acme]\nrequests_per_second = 2.5\naudio_seconds_per_day = 3600\n",
    )
    ring = load_keyring(path)
    assert ring.tenants == {"acme", "globex"}
    assert ring.lookup("k1").rpcs == ALL_RPCS  # type: ignore[union-attr]
    reader = ring.lookup("k2")
    assert reader is not None and reader.key_name == "reader"
    assert reader.rpcs == {"GetJob", "WatchJob", "ListJobs", "CancelJob"}
    assert ring.lookup("k3").rpcs == {  # type: ignore[union-attr]
        "Transcribe",
        "TranscribeWithProgress",
        "CreateJob",
        "UploadJob",
        "StreamingRecognize",
    }
    assert ring.lookup("nope") is None
    assert ring.limits["acme"].requests_per_second == 2.5
    assert ring.limits["acme"].audio_seconds_per_day == 3600
    assert ring.limits["acme"].request_burst is None


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "has no [[keys]] entries"),
        ("[[keys", "is not valid TOML"),
        ('[[keys]]\nsha256 = "abc"\ntenant = "a"\n', "sha256 must be 64 hex characters"),
        (entry("k", "Bad Tenant!"), "tenant must be 1-64 of a-z"),
        (entry("k", "acme", '["admin"]'), "unknown role 'admin'"),
        (entry("k", "acme", "[]"), "roles must be a non-empty list"),
        (entry("k") + entry("k"), "keys[1] repeats the sha256"),
        (entry("k") + "[tenants.acme]\nburst = 3\n", "unknown fields ['burst']"),
        (entry("k") + "[tenants.acme]\nrequests_per_second = -1\n", "must be a number >= 0"),
    ],
)
def test_bad_keys_files_stop_start_up(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_keyring(write(tmp_path, text))
    assert message in str(caught.value)
    assert "SAYIT_API_KEYS_FILE" in str(caught.value)


def test_missing_keys_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        load_keyring(tmp_path / "absent.toml")


def test_cli_new_then_hash_then_check(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert (
        keys.main(["new", "--tenant", "acme", "--name", "acme-prod", "--roles", "read,cancel"]) == 0
    )
    out = capsys.readouterr().out
    key = out.splitlines()[1].removeprefix("# ")
    assert key.startswith("sayit_") and key not in out.split("[[keys]]")[1]
    block = out[out.index("[[keys]]") :]
    assert f'sha256 = "{keys.hash_key(key)}"' in block and 'roles = ["read", "cancel"]' in block
    assert keys.main(["hash", key]) == 0
    assert capsys.readouterr().out.strip() == keys.hash_key(key)
    path = write(tmp_path, block)
    assert keys.main(["check", str(path)]) == 0
    assert "1 keys, tenants: acme" in capsys.readouterr().out
    assert load_keyring(path).lookup(key).rpcs == {"GetJob", "WatchJob", "ListJobs", "CancelJob"}  # type: ignore[union-attr]
    assert keys.main(["check", str(write(tmp_path, "nonsense = 1"))]) == 1


@pytest.mark.parametrize(
    ("metadata", "expected"),
    [
        ([("authorization", "Bearer abc")], "abc"),
        ([("authorization", "bearer   abc  ")], "abc"),
        ([("x-request-id", "1"), ("authorization", b"Bearer abc")], "abc"),
    ],
)
def test_bearer_key(metadata: list, expected: str) -> None:
    assert bearer_key(metadata) == expected


@pytest.mark.parametrize(
    ("metadata", "message"),
    [
        ([], "no API key"),
        ([("authorization", "abc")], "malformed"),
        ([("authorization", "Basic abc")], "malformed"),
        ([("authorization", "Bearer")], "malformed"),
        ([("authorization", "Bearer a b")], "malformed"),
        ([("authorization", "Bearer a"), ("authorization", "Bearer b")], "2 authorization"),
    ],
)
def test_bad_bearer_metadata_is_unauthenticated(metadata: list, message: str) -> None:
    with pytest.raises(Unauthenticated) as caught:
        bearer_key(metadata)
    assert message in caught.value.message
    assert caught.value.code == grpc.StatusCode.UNAUTHENTICATED


def test_authenticator(tmp_path: Path) -> None:
    ring = load_keyring(write(tmp_path, entry("good", "acme", '["read"]', "acme-reader")))
    auth = Authenticator(lambda: ring)
    principal = auth.authenticate([("authorization", "Bearer good")], "GetJob")
    assert principal.tenant == "acme"
    # GetInfo needs no key, but a key it is sent must be valid.
    assert auth.identify_if_sent([("x-request-id", "r")]) == UNKNOWN
    assert auth.identify_if_sent([("authorization", "Bearer good")]).tenant == "acme"
    with pytest.raises(Unauthenticated, match="not recognised"):
        auth.identify_if_sent([("authorization", "Bearer bad")])
    with pytest.raises(Unauthenticated, match="not recognised"):
        auth.authenticate([("authorization", "Bearer bad")], "GetJob")
    with pytest.raises(PermissionDenied, match="'acme-reader' may not call Transcribe"):
        auth.authenticate([("authorization", "Bearer good")], "Transcribe")
