"""python -m services.gateway — serve the public sayit.speech.v1.SpeechService."""

from __future__ import annotations

import asyncio
import os
import sys

from sayit.speech.v1 import speech_service_pb2, speech_service_pb2_grpc
from services.common import logs, metrics
from services.common.channels import aio_channel
from services.common.errors import ConfigError
from services.common.server import Lifecycle, Service, serve
from services.gateway.config import load_config
from services.gateway.servicer import SpeechServicer

SERVICE_NAME = speech_service_pb2.DESCRIPTOR.services_by_name["SpeechService"].full_name


async def main() -> int:
    try:
        config = load_config(os.environ)
    except ConfigError as error:
        print(f"gateway: bad configuration: {error}", file=sys.stderr)
        return 2
    logs.configure("gateway", config.server.log)
    if config.metrics_addr:
        try:
            metrics.serve(config.metrics_addr)
        except RuntimeError as error:
            print(f"gateway: {error}", file=sys.stderr)
            return 1
    channel = aio_channel(config.scheduler_addr, config.server.max_message_bytes)
    servicer = SpeechServicer(config, channel)

    async def shutdown() -> None:
        await channel.close()

    return await serve(
        config.server,
        [
            Service(
                SERVICE_NAME,
                lambda server: speech_service_pb2_grpc.add_SpeechServiceServicer_to_server(
                    servicer, server
                ),
            )
        ],
        Lifecycle(shutdown=shutdown),
    )


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
