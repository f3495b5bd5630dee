"""The edge's one connection to the gateway, and the metadata each call carries: the caller's
API key (`Authorization: Bearer`) and request id, passed through unchanged so the gateway
authenticates, limits and logs the HTTP caller exactly as a gRPC one."""

from __future__ import annotations

from dataclasses import dataclass

import grpc
from fastapi import Request

from sayit.speech.v1 import speech_service_pb2_grpc as pb_grpc
from services.common.channels import aio_channel
from services.common.interceptors import REQUEST_ID_KEY
from services.common.tls import ClientTLS

# Room for the largest inline file (SAYIT_HTTP_INLINE_BYTES) and the largest transcript.
MAX_MESSAGE_BYTES = 64 * 1024 * 1024


@dataclass
class Gateway:
    channel: grpc.aio.Channel
    stub: pb_grpc.SpeechServiceStub

    @classmethod
    def connect(cls, addr: str, tls: ClientTLS | None) -> Gateway:
        channel = aio_channel(addr, MAX_MESSAGE_BYTES, tls)
        return cls(channel, pb_grpc.SpeechServiceStub(channel))

    async def close(self) -> None:
        await self.channel.close()


def metadata(request: Request) -> tuple[tuple[str, str], ...]:
    """The gRPC metadata of a call made for `request`."""
    pairs: list[tuple[str, str]] = []
    authorization = request.headers.get("authorization")
    if authorization:
        pairs.append(("authorization", authorization))
    request_id = getattr(request.state, "request_id", None)
    if request_id:
        pairs.append((REQUEST_ID_KEY, request_id))
    return tuple(pairs)


def of(request: Request) -> Gateway:
    gateway: Gateway = request.app.state.gateway
    return gateway
