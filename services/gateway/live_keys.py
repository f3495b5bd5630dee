"""The keys file in force: read again when its content changes (checked every
SAYIT_API_KEYS_RELOAD_SECONDS) and on SIGHUP, so a key is revoked or added without a restart.

A new file that does not load (half edited, bad TOML, a bad entry, gone) is refused with a
logged error and the keys before it stay in force: a typo must not lock every caller out, nor
let anyone in.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import threading
from collections.abc import Iterator, Mapping
from pathlib import Path

from services.common import logs
from services.common.errors import ConfigError
from services.gateway.keys import KeyRing, TenantLimits, parse_keyring, read_keys_file

log = logs.get_logger("sayit.gateway.keys")


class LiveKeys:
    def __init__(self, path: Path, poll_seconds: float) -> None:
        """Load `path` (ConfigError if it does not load: the gateway does not start)."""
        self._path = path
        self._poll_seconds = poll_seconds
        content = read_keys_file(path)
        self._ring = parse_keyring(content, path)
        self._digest = _digest(content)
        # What was last refused, so that a bad file is logged once, not at every poll.
        self._refused = ""
        self._lock = threading.Lock()
        self._wake = asyncio.Event()

    @property
    def ring(self) -> KeyRing:
        return self._ring

    @property
    def tenant_limits(self) -> Mapping[str, TenantLimits]:
        """Tenants' own limits, always those of the keys in force."""
        return _LiveLimits(self)

    def reload(self, reason: str, *, force: bool = False) -> bool:
        """Read the file; put its keys in force if it changed (or `force`) and loads. True when
        new keys are in force. Blocking (reads the file)."""
        with self._lock:
            try:
                content = read_keys_file(self._path)
            except ConfigError as error:
                return self._refuse(reason, str(error), str(error), force)
            digest = _digest(content)
            if not force and digest in (self._digest, self._refused):
                return False
            try:
                ring = parse_keyring(content, self._path)
            except Exception as error:  # any bad content: the old keys stay
                return self._refuse(reason, digest, str(error) or repr(error), force)
            old, self._ring, self._digest, self._refused = self._ring, ring, digest, ""
        log.info(
            "api_keys_reloaded",
            reason=reason,
            file=str(self._path),
            keys=len(ring.by_hash),
            tenants=sorted(ring.tenants),
            added=sorted(ring.by_hash[h].key_name for h in ring.by_hash.keys() - old.by_hash),
            removed=sorted(old.by_hash[h].key_name for h in old.by_hash.keys() - ring.by_hash),
        )
        return True

    def _refuse(self, reason: str, seen: str, error: str, force: bool) -> bool:
        # `seen` names what was refused (content digest or read error): logged once.
        if force or seen != self._refused:
            log.error(
                "api_keys_reload_refused",
                reason=reason,
                file=str(self._path),
                error=error,
                keys_in_force=len(self._ring.by_hash),
            )
        self._refused = seen
        return False

    def request_reload(self) -> None:
        """Reload at once, whatever the file holds (the SIGHUP handler, on the event loop)."""
        self._wake.set()

    async def watch(self) -> None:
        """Check the file every poll interval, and when asked, until cancelled."""
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self._poll_seconds)
            asked = self._wake.is_set()
            self._wake.clear()
            await asyncio.to_thread(self.reload, "SIGHUP" if asked else "changed", force=asked)


class _LiveLimits(Mapping[str, TenantLimits]):
    def __init__(self, keys: LiveKeys) -> None:
        self._keys = keys

    def __getitem__(self, tenant: str) -> TenantLimits:
        return self._keys.ring.limits[tenant]

    def __iter__(self) -> Iterator[str]:
        return iter(self._keys.ring.limits)

    def __len__(self) -> int:
        return len(self._keys.ring.limits)


def _digest(content: bytes) -> str:
    return hashlib.sha256(content).hexdigest()
