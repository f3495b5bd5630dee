"""GetInfo: what a caller may know about this gateway before (or without) a key. Only public
facts: no internal addresses, no other tenant's names or limits."""

from __future__ import annotations

from importlib import metadata

from sayit.speech.v1 import speech_service_pb2 as pb
from services.gateway.config import GatewayConfig
from services.gateway.keys import Principal
from services.gateway.quotas import Limiter, Limits

NO_LIMITS = Limits(requests_per_second=0.0, request_burst=0, audio_seconds_per_day=0.0)


def version() -> str:
    try:
        return metadata.version("sayit")
    except metadata.PackageNotFoundError:  # run from a source tree that was never installed
        return "unknown"


def get_info(
    config: GatewayConfig, caller: Principal, limiter: Limiter | None
) -> pb.GetInfoResponse:
    # With no limiter, no limit is enforced; an unknown caller ("") gets the defaults.
    limits = limiter.limits(caller.tenant) if limiter is not None else NO_LIMITS
    return pb.GetInfoResponse(
        version=version(),
        auth_mode=pb.AUTH_MODE_API_KEYS if config.api_keys_file else pb.AUTH_MODE_OFF,
        tenant=caller.tenant,
        model=config.model,
        max_audio_seconds=config.max_audio_seconds,
        max_request_bytes=config.server.max_message_bytes,
        max_upload_bytes=config.max_upload_bytes,
        tenant_requests_per_second=limits.requests_per_second,
        tenant_request_burst=limits.request_burst,
        tenant_audio_seconds_per_day=limits.audio_seconds_per_day,
    )
