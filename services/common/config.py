"""The plain config objects every server is given, derived from its settings.

Settings are read from the environment once, in each service's __main__, by the classes in
services/common/settings.py; what lies below __main__ gets these frozen dataclasses.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from services.common.tls import ClientTLS, ServerTLS

MIB = 1024 * 1024


@dataclass(frozen=True)
class LogConfig:
    level: str
    # "json", "console" or "auto" (JSON unless stderr is a terminal)
    format: str


@dataclass(frozen=True)
class ServerConfig:
    """What every gRPC server needs."""

    addr: str
    # The largest audio a request may carry (SAYIT_MAX_REQUEST_BYTES); the transport allows a
    # little more for the rest of the message (see server.transport_limit).
    max_message_bytes: int
    shutdown_grace_seconds: float
    log: LogConfig
    tls: ServerTLS | None = None
    # For channels to other services (and health checks).
    client_tls: ClientTLS | None = None
    # Calls and open streams served at once (services.common.call_limits); 0 = no cap.
    max_concurrent_rpcs: int = 0
    max_open_streams: int = 0
    # The services whose certificates may call this server's RPCs (services.common.peers);
    # None = no identity check (the gateway's public port, or internal TLS turned off).
    allowed_peers: frozenset[str] | None = None
    # SAYIT_INTERNAL_TLS=off on a server only services call: warned about at start.
    internal_tls_off: bool = False
