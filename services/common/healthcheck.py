"""python -m services.common.healthcheck ADDR [--service NAME] [--wait SECONDS]

Exit 0 when the gRPC health service at ADDR reports SERVING, 1 otherwise. Used by container
health checks, by `make up`, and by the queue worker, which must not create gRPC channels in its
own process before forking work horses.
"""

from __future__ import annotations

import argparse
import sys
import time

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc


def check(addr: str, service: str = "", timeout: float = 2.0) -> str:
    """The serving status name, or a description of why the check failed."""
    with grpc.insecure_channel(addr) as channel:
        try:
            reply = health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(service=service), timeout=timeout
            )
        except grpc.RpcError as error:
            return f"not answering ({error.code().name})"
    return health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("addr")
    parser.add_argument("--service", default="")
    parser.add_argument("--wait", type=float, default=0.0, help="keep trying this many seconds")
    args = parser.parse_args(argv)
    deadline = time.monotonic() + args.wait
    while True:
        status = check(args.addr, args.service)
        if status == "SERVING" or time.monotonic() >= deadline:
            print(f"{args.addr}: {status}")
            return 0 if status == "SERVING" else 1
        time.sleep(0.25)


if __name__ == "__main__":
    sys.exit(main())
