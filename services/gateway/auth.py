"""Who is calling: API keys in `authorization: Bearer <key>` metadata -> a Principal.

With SAYIT_AUTH=off there is no keys file: every caller is the default tenant with every right
(the gateway logs a warning at start, and GetInfo says so).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from contextvars import ContextVar
from typing import Any

from services.common.errors import PermissionDenied, Unauthenticated
from services.gateway.keys import ALL_RPCS, KeyRing, Principal

AUTHORIZATION_KEY = "authorization"
DEFAULT_TENANT = "default"
ANONYMOUS = Principal(DEFAULT_TENANT, "", ALL_RPCS)
# A caller who sent no key to an RPC that needs none (GetInfo): no tenant, no rights.
UNKNOWN = Principal("", "", frozenset())

# The principal of the call being handled; each RPC runs in its own task, hence its own copy.
# No default: code reached without the edge interceptor having admitted the call fails (INTERNAL)
# instead of serving it as a tenant with every right.
_current: ContextVar[Principal] = ContextVar("sayit_principal")

_HOW = "send metadata 'authorization: Bearer <API key>'"


def current() -> Principal:
    principal = _current.get(None)
    if principal is None:
        raise RuntimeError("no principal: the call did not pass the gateway's interceptor")
    return principal


def set_current(principal: Principal) -> None:
    _current.set(principal)


def _authorization(metadata: Iterable[Any]) -> list[str]:
    values = []
    for item in metadata or ():
        key, value = (item.key, item.value) if hasattr(item, "key") else item
        if key == AUTHORIZATION_KEY:
            values.append(value.decode(errors="replace") if isinstance(value, bytes) else value)
    return values


def bearer_key(metadata: Iterable[Any]) -> str:
    """The key in the call's authorization metadata; UNAUTHENTICATED if missing or malformed."""
    values = _authorization(metadata)
    if not values:
        raise Unauthenticated(f"no API key: {_HOW}")
    if len(values) > 1:
        raise Unauthenticated(f"{len(values)} authorization entries; {_HOW} once")
    scheme, _, key = values[0].strip().partition(" ")
    key = key.strip()
    if scheme.lower() != "bearer" or not key or " " in key:
        raise Unauthenticated(f"malformed authorization metadata: {_HOW}")
    return key


class Authenticator:
    def __init__(self, keyring: Callable[[], KeyRing]) -> None:
        # Asked at every call: the keys in force change when the keys file is reloaded.
        self._keyring = keyring

    def identify(self, metadata: Iterable[Any]) -> Principal:
        """Who sent the key in `metadata`; UNAUTHENTICATED if there is none or it is unknown."""
        principal = self._keyring().lookup(bearer_key(metadata))
        if principal is None:
            raise Unauthenticated(
                "API key not recognised (mistyped, revoked, or for another deployment)"
            )
        return principal

    def identify_if_sent(self, metadata: Iterable[Any]) -> Principal:
        """As `identify` when the call carries a key; UNKNOWN when it carries none."""
        return self.identify(metadata) if _authorization(metadata) else UNKNOWN

    def authenticate(self, metadata: Iterable[Any], rpc: str) -> Principal:
        principal = self.identify(metadata)
        if not principal.may(rpc):
            raise PermissionDenied(
                f"API key {principal.key_name!r} may not call {rpc}; ask for a key with that "
                "right (roles: transcribe, read, cancel)"
            )
        return principal
