"""python -m services.common.healthcheck ADDR [--service NAME] [--wait SECONDS]

Exit 0 when the gRPC health service at ADDR reports SERVING, 1 otherwise. Used by container
health checks, by `make up`, and by the queue worker, which must not create gRPC channels in its
own process before forking work horses. Speaks TLS (and presents a client certificate for mutual
TLS) from SAYIT_TLS_CA_FILE and SAYIT_TLS_CLIENT_CERT_FILE / SAYIT_TLS_CLIENT_KEY_FILE.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from services.common.errors import ConfigError
from services.common.shared_settings import ClientTLSSettings
from services.common.tls import ClientTLS


class HealthcheckSettings(ClientTLSSettings):
    used_by = "healthcheck"


def _channel(addr: str, tls: ClientTLS | None) -> grpc.Channel:
    if tls is None:
        return grpc.insecure_channel(addr)
    return grpc.secure_channel(addr, tls.credentials())


def check(addr: str, service: str = "", timeout: float = 2.0, tls: ClientTLS | None = None) -> str:
    """The serving status name, or a description of why the check failed."""
    with _channel(addr, tls) as channel:
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
    try:
        tls = HealthcheckSettings.from_env(os.environ).client_tls
    except ConfigError as error:
        print(f"healthcheck: bad configuration: {error}", file=sys.stderr)
        return 2
    deadline = time.monotonic() + args.wait
    while True:
        status = check(args.addr, args.service, tls=tls)
        if status == "SERVING" or time.monotonic() >= deadline:
            print(f"{args.addr}: {status}")
            return 0 if status == "SERVING" else 1
        time.sleep(0.25)


if __name__ == "__main__":
    sys.exit(main())
