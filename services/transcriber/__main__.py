"""python -m services.transcriber — serve TranscriberService with the configured model."""

from __future__ import annotations

import asyncio
import os
import sys

from sayit.transcriber.v1 import transcriber_service_pb2, transcriber_service_pb2_grpc
from services.common import hugepages, logs, metrics
from services.common.errors import ConfigError
from services.common.server import Lifecycle, Service, serve
from services.transcriber.config import load_config
from services.transcriber.servicer import TranscriberServicer

SERVICE_NAME = transcriber_service_pb2.DESCRIPTOR.services_by_name["TranscriberService"].full_name


async def main() -> int:
    try:
        config = load_config(os.environ)
    except ConfigError as error:
        print(f"transcriber: bad configuration: {error}", file=sys.stderr)
        return 2
    logs.configure("transcriber", config.server.log)
    if config.metrics_addr:
        try:
            metrics.serve(config.metrics_addr)
        except RuntimeError as error:
            print(f"transcriber: {error}", file=sys.stderr)
            return 1
    servicer = TranscriberServicer(config)

    async def shutdown() -> None:
        servicer.close()

    return await serve(
        config.server,
        [
            Service(
                SERVICE_NAME,
                lambda server: (
                    transcriber_service_pb2_grpc.add_TranscriberServiceServicer_to_server(
                        servicer, server
                    )
                ),
            )
        ],
        Lifecycle(startup=servicer.load_model, draining=servicer.drain, shutdown=shutdown),
    )


if __name__ == "__main__":
    hugepages.reexec_with_huge_pages("services.transcriber", os.environ)
    sys.exit(asyncio.run(main()))
