"""API keys and tenants: the keys file (SAYIT_API_KEYS_FILE) and a CLI to make keys.

The file is TOML and holds only the sha256 of each key, never the key itself:

    [[keys]]
    name = "billing-prod"            # shown in logs, never the key
    sha256 = "<64 hex characters>"   # python -m services.gateway.keys hash
    tenant = "billing"               # the jobs this key creates belong to this tenant
    roles = ["transcribe", "read"]   # transcribe, read, cancel, all, or RPC names ("GetJob")

    [tenants.billing]                # optional: this tenant's own limits (else the defaults)
    requests_per_second = 20
    request_burst = 40
    audio_seconds_per_day = 36000

    python -m services.gateway.keys new --tenant billing --name billing-prod --roles all
    python -m services.gateway.keys hash            # reads the key from stdin
    python -m services.gateway.keys check FILE
"""

from __future__ import annotations

import argparse
import hashlib
import re
import secrets
import sys
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from services.common.errors import ConfigError

SUBMIT_RPCS = frozenset(
    {"Transcribe", "TranscribeWithProgress", "CreateJob", "UploadJob", "StreamingRecognize"}
)
READ_RPCS = frozenset({"GetJob", "WatchJob", "ListJobs"})
CANCEL_RPCS = frozenset({"CancelJob"})
ALL_RPCS = SUBMIT_RPCS | READ_RPCS | CANCEL_RPCS
ROLES: dict[str, frozenset[str]] = {
    "transcribe": SUBMIT_RPCS,
    "read": READ_RPCS,
    "cancel": CANCEL_RPCS,
    "all": ALL_RPCS,
}
KEY_PREFIX = "sayit_"
_TENANT = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,63}$")
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_LIMIT_FIELDS = ("requests_per_second", "request_burst", "audio_seconds_per_day")


def hash_key(key: str) -> str:
    """The hex sha256 stored for a key. Keys are 256-bit random, so a plain hash suffices."""
    return hashlib.sha256(key.strip().encode()).hexdigest()


def new_key() -> str:
    return KEY_PREFIX + secrets.token_urlsafe(32)


def keys_entry(key: str, tenant: str, name: str, roles: list[str]) -> str:
    """The keys file's [[keys]] entry for `key` (its hash, never the key)."""
    quoted = ", ".join(f'"{role}"' for role in roles)
    return (
        f'[[keys]]\nname = "{name}"\nsha256 = "{hash_key(key)}"\ntenant = "{tenant}"\n'
        f"roles = [{quoted}]\n"
    )


@dataclass(frozen=True)
class Principal:
    """Who is calling: the tenant that owns their jobs and the RPCs they may call."""

    tenant: str
    key_name: str
    rpcs: frozenset[str]

    def may(self, rpc: str) -> bool:
        return rpc in self.rpcs


@dataclass(frozen=True)
class TenantLimits:
    """A tenant's own limits; None = the deployment's default."""

    requests_per_second: float | None = None
    request_burst: int | None = None
    audio_seconds_per_day: float | None = None


@dataclass(frozen=True)
class KeyRing:
    by_hash: dict[str, Principal]
    limits: dict[str, TenantLimits]

    def lookup(self, key: str) -> Principal | None:
        return self.by_hash.get(hash_key(key))

    @property
    def tenants(self) -> set[str]:
        return {p.tenant for p in self.by_hash.values()}


def load_keyring(path: Path) -> KeyRing:
    """Parse and check a keys file; ConfigError naming the file and entry otherwise."""
    return parse_keyring(read_keys_file(path), path)


def read_keys_file(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as error:
        raise ConfigError(
            f"SAYIT_API_KEYS_FILE: cannot read {path}: {error.strerror or error}"
        ) from None


def parse_keyring(content: bytes, path: Path) -> KeyRing:
    """The keys file's `content` (read from `path`, named in errors), checked."""
    where = "SAYIT_API_KEYS_FILE"
    try:
        data = tomllib.loads(content.decode())
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as error:
        raise ConfigError(f"{where}: {path} is not valid TOML: {error}") from None
    entries = data.get("keys", [])
    if not isinstance(entries, list) or not entries:
        raise ConfigError(f"{where}: {path} has no [[keys]] entries")
    by_hash: dict[str, Principal] = {}
    for index, entry in enumerate(entries):
        principal, digest = _principal(entry, f"{where}: {path} keys[{index}]")
        if digest in by_hash:
            raise ConfigError(f"{where}: {path} keys[{index}] repeats the sha256 of another key")
        by_hash[digest] = principal
    tenants = data.get("tenants") or {}
    if not isinstance(tenants, dict):
        raise ConfigError(f"{where}: {path} tenants must be a table ([tenants.NAME])")
    limits = {
        name: _limits(value, f"{where}: {path} tenants.{name}") for name, value in tenants.items()
    }
    return KeyRing(by_hash, limits)


def _principal(entry: Any, where: str) -> tuple[Principal, str]:
    if not isinstance(entry, dict):
        raise ConfigError(f"{where} must be a table")
    digest = str(entry.get("sha256", "")).lower()
    if not _SHA256.match(digest):
        raise ConfigError(
            f"{where}: sha256 must be 64 hex characters (python -m services.gateway.keys hash)"
        )
    tenant = str(entry.get("tenant", ""))
    if not _TENANT.match(tenant):
        raise ConfigError(
            f"{where}: tenant must be 1-64 of a-z 0-9 _ . - (starting with a letter or digit); "
            f"got {tenant!r}"
        )
    roles = entry.get("roles", ["all"])
    if not isinstance(roles, list) or not roles:
        raise ConfigError(f"{where}: roles must be a non-empty list")
    rpcs: set[str] = set()
    for role in roles:
        if role in ROLES:
            rpcs |= ROLES[role]
        elif role in ALL_RPCS:
            rpcs.add(role)
        else:
            raise ConfigError(
                f"{where}: unknown role {role!r}; use {', '.join(ROLES)} or RPC names "
                f"({', '.join(sorted(ALL_RPCS))})"
            )
    name = str(entry.get("name", "")) or digest[:8]
    return Principal(tenant, name, frozenset(rpcs)), digest


def _limits(value: Any, where: str) -> TenantLimits:
    if not isinstance(value, dict):
        raise ConfigError(f"{where} must be a table")
    unknown = set(value) - set(_LIMIT_FIELDS)
    if unknown:
        raise ConfigError(f"{where}: unknown fields {sorted(unknown)}; use {_LIMIT_FIELDS}")
    for field, number in value.items():
        if isinstance(number, bool) or not isinstance(number, int | float) or number < 0:
            raise ConfigError(f"{where}: {field} must be a number >= 0 (0 = unlimited)")
    burst = value.get("request_burst")
    return TenantLimits(
        requests_per_second=value.get("requests_per_second"),
        request_burst=int(burst) if burst is not None else None,
        audio_seconds_per_day=value.get("audio_seconds_per_day"),
    )


# --- command line --------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m services.gateway.keys", description="Make and check SayIt API keys."
    )
    commands = parser.add_subparsers(dest="command", required=True)
    hash_cmd = commands.add_parser("hash", help="print the sha256 of a key (read from stdin)")
    hash_cmd.add_argument("key", nargs="?", help="the key (default: read from stdin)")
    new_cmd = commands.add_parser("new", help="make a key; print it once and its [[keys]] entry")
    new_cmd.add_argument("--tenant", required=True)
    new_cmd.add_argument("--name", default="")
    new_cmd.add_argument("--roles", default="all", help="comma-separated (default: all)")
    check_cmd = commands.add_parser("check", help="check a keys file")
    check_cmd.add_argument("file", type=Path)
    args = parser.parse_args(argv)

    if args.command == "hash":
        key = args.key if args.key is not None else sys.stdin.readline()
        if not key.strip():
            print("no key given", file=sys.stderr)
            return 2
        print(hash_key(key))
        return 0
    if args.command == "new":
        if not _TENANT.match(args.tenant):
            print(f"bad tenant name {args.tenant!r}", file=sys.stderr)
            return 2
        key = new_key()
        roles = [r.strip() for r in args.roles.split(",") if r.strip()]
        print(f"# The key (give it to the caller; it is not stored anywhere):\n# {key}")
        print(keys_entry(key, args.tenant, args.name or args.tenant, roles), end="")
        return 0
    try:
        ring = load_keyring(args.file)
    except ConfigError as error:
        print(error, file=sys.stderr)
        return 1
    print(f"{args.file}: {len(ring.by_hash)} keys, tenants: {', '.join(sorted(ring.tenants))}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
