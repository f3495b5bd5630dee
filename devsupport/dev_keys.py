"""The development tenant's API key: `make up` (in .run/) and the test meshes (in their
directory) make it on first start and reuse it afterwards, and the tools attach it to their
channels to the gateway.

`api-keys.toml` is the gateway's SAYIT_API_KEYS_FILE (tenant `dev`, key name `dev`, every right;
hashes only, so readable by all: compose's gateway reads it as another user); `dev-api-key`
holds the key itself, readable by its owner only. A keys file that is already there is never
rewritten: keys added to it by hand stay.

    python -m devsupport.dev_keys [DIR]    # make them in DIR (default .run) if not there
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc

from services.gateway.keys import keys_entry, new_key

KEYS_FILE = "api-keys.toml"
KEY_FILE = "dev-api-key"
TENANT = "dev"


@dataclass(frozen=True)
class DevKeys:
    keys_file: Path
    # The dev key; None when the keys file was made by someone else and no dev-api-key is there.
    key: str | None


def ensure(directory: Path) -> DevKeys:
    """The dev keys in `directory`, made when there is no keys file yet."""
    directory.mkdir(parents=True, exist_ok=True)
    keys_file, key_file = directory / KEYS_FILE, directory / KEY_FILE
    if not keys_file.exists():
        key = new_key()
        _write(key_file, key + "\n", 0o600)
        # Written last: a keys file without its key file would never be made again.
        _write(keys_file, keys_entry(key, TENANT, TENANT, ["all"]), 0o644)
        return DevKeys(keys_file, key)
    try:
        return DevKeys(keys_file, key_file.read_text().strip() or None)
    except FileNotFoundError:
        return DevKeys(keys_file, None)


def _write(path: Path, text: str, mode: int) -> None:
    # Made with its mode (never readable by others, even for a moment), then renamed in place.
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.unlink(missing_ok=True)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    with os.fdopen(fd, "w") as file:
        file.write(text)
    os.chmod(tmp, mode)  # whatever the umask took away
    tmp.replace(path)


def metadata(key: str | None) -> list[tuple[str, str]]:
    """The call metadata that carries `key` (none without a key)."""
    return [("authorization", f"Bearer {key}")] if key else []


class _KeyInterceptor(
    grpc.UnaryUnaryClientInterceptor,
    grpc.UnaryStreamClientInterceptor,
    grpc.StreamUnaryClientInterceptor,
    grpc.StreamStreamClientInterceptor,
):
    """Adds the key to every call that does not carry an authorization of its own (a test that
    sends another key, or a bad one, still can)."""

    def __init__(self, key: str) -> None:
        self._key = key

    def _details(self, details: Any) -> Any:
        own = list(details.metadata or ())
        if any(name == "authorization" for name, _ in own):
            return details
        return _Details(
            details.method,
            details.timeout,
            [*own, *metadata(self._key)],
            details.credentials,
            details.wait_for_ready,
            details.compression,
        )

    def intercept_unary_unary(
        self, continuation: Callable[..., Any], details: Any, request: Any
    ) -> Any:
        return continuation(self._details(details), request)

    def intercept_unary_stream(
        self, continuation: Callable[..., Any], details: Any, request: Any
    ) -> Any:
        return continuation(self._details(details), request)

    def intercept_stream_unary(
        self, continuation: Callable[..., Any], details: Any, requests: Any
    ) -> Any:
        return continuation(self._details(details), requests)

    def intercept_stream_stream(
        self, continuation: Callable[..., Any], details: Any, requests: Any
    ) -> Any:
        return continuation(self._details(details), requests)


@dataclass(frozen=True)
class _Details(grpc.ClientCallDetails):
    method: str
    timeout: float | None
    metadata: Any
    credentials: Any
    wait_for_ready: bool | None
    compression: Any


def keyed(channel: grpc.Channel, key: str | None) -> grpc.Channel:
    """`channel`, sending `key` with every call (unchanged without a key)."""
    return grpc.intercept_channel(channel, _KeyInterceptor(key)) if key else channel


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m devsupport.dev_keys",
        description="Make the dev tenant's API key and keys file (kept when already there).",
    )
    parser.add_argument("directory", nargs="?", type=Path, default=Path(".run"))
    keys = ensure(parser.parse_args(argv).directory)
    print(f"keys file: {keys.keys_file}")
    print(f"dev key: {keys.keys_file.parent / KEY_FILE}" if keys.key else "no dev key (own file)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
