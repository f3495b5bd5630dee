"""The edge mesh: API keys for several tenants, tight limits for some, mutual TLS everywhere
(the gateway's public port too, with the mesh's CA), and a short queue-wait limit, for the auth,
limits, backpressure, deadline and fuzz tests."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import grpc

from devsupport.mesh import Mesh, RedisServer
from devsupport.processes import channel
from sayit.speech.v1 import speech_service_pb2_grpc as pb_grpc
from services.common import pki
from services.gateway.keys import hash_key, new_key

MAX_QUEUE_WAIT_SECONDS = 10
AUDIO_SECONDS_PER_DAY = 20
MAX_MESSAGE = 64 << 20


@dataclass
class EdgeMesh:
    mesh: Mesh
    certs: pki.Pki
    keys_file: Path
    # tenant role -> plain API key
    keys: dict[str, str] = field(default_factory=dict)

    @property
    def gateway_addr(self) -> str:
        return self.mesh.gateway_addr

    def channel(
        self, addr: str | None = None, *, certificate: bool = True, as_service: str = "operator"
    ) -> grpc.Channel:
        """A channel to the gateway (or `addr`) presenting `as_service`'s certificate (any
        certificate of the CA passes the gateway's public port; internal services check it)."""
        return channel(
            addr or self.gateway_addr,
            self.certs.client_tls(as_service if certificate else None),
            **{
                "grpc.max_receive_message_length": MAX_MESSAGE,
                "grpc.max_send_message_length": MAX_MESSAGE,
            },
        )

    def stub(self, addr: str | None = None) -> pb_grpc.SpeechServiceStub:
        return pb_grpc.SpeechServiceStub(self.channel(addr))

    def gateway_env(self, *, mutual: bool) -> dict[str, str]:
        """SAYIT_TLS_* of a gateway serving TLS on its public port (requiring client
        certificates when `mutual`) and calling the scheduler as the gateway."""
        env = {
            **self.certs.client_env("gateway"),
            "SAYIT_TLS_CERT_FILE": str(self.certs.cert("gateway")),
            "SAYIT_TLS_KEY_FILE": str(self.certs.key("gateway")),
        }
        if mutual:
            env["SAYIT_TLS_CLIENT_CA_FILE"] = str(self.certs.ca_cert)
        return env

    def auth(self, who: str) -> list[tuple[str, str]]:
        return [("authorization", f"Bearer {self.keys[who]}")]


# who -> (tenant, roles)
PRINCIPALS = {
    "acme": ("acme", ["all"]),
    "acme-reader": ("acme", ["read"]),
    "globex": ("globex", ["transcribe", "read", "cancel"]),
    "tiny": ("tiny", ["all"]),
    "meter": ("meter", ["all"]),
}


def write_keys(path: Path) -> dict[str, str]:
    keys = {who: new_key() for who in PRINCIPALS}
    lines = []
    for who, (tenant, roles) in PRINCIPALS.items():
        quoted = ", ".join(f'"{r}"' for r in roles)
        lines += [
            "[[keys]]",
            f'name = "{who}"',
            f'sha256 = "{hash_key(keys[who])}"',
            f'tenant = "{tenant}"',
            f"roles = [{quoted}]",
            "",
        ]
    lines += [
        "[tenants.tiny]",
        "requests_per_second = 0.5",
        "request_burst = 2",
        "",
        "[tenants.meter]",
        f"audio_seconds_per_day = {AUDIO_SECONDS_PER_DAY}",
    ]
    path.write_text("\n".join(lines) + "\n")
    return keys


def start_edge_mesh(directory: Path) -> tuple[EdgeMesh, RedisServer]:
    # The mesh's own PKI, which Mesh reuses for the internal hops.
    certs = pki.ensure(directory / "pki")
    keys_file = directory / "keys.toml"
    keys = write_keys(keys_file)
    redis_server = RedisServer(directory / "redis").start()
    mesh = Mesh(
        directory,
        redis_server,
        queue_transcribers=1,
        direct_slots=1,
        # One chunk per job: the backpressure test counts whole files in the queue.
        extra_env={"SAYIT_CHUNK_MIN_SECONDS": "100000"},
        service_env={
            "gateway": {
                "SAYIT_API_KEYS_FILE": str(keys_file),
                "SAYIT_TLS_CERT_FILE": str(certs.cert("gateway")),
                "SAYIT_TLS_KEY_FILE": str(certs.key("gateway")),
                "SAYIT_TLS_CLIENT_CA_FILE": str(certs.ca_cert),
            },
            "scheduler": {"SAYIT_MAX_QUEUE_WAIT_SECONDS": str(MAX_QUEUE_WAIT_SECONDS)},
        },
        tls=certs.client_tls("operator"),
    )
    try:
        mesh.build().start()
    except BaseException:
        mesh.stop()
        redis_server.stop()
        raise
    return EdgeMesh(mesh, certs, keys_file, keys), redis_server
