"""Certificates rotate without a restart: real mTLS servers and channels on loopback, whose
certificate files are replaced while they run (services.common.tls_files).

The server's certificate is read from a plain `ssl` handshake (gRPC's Python client does not
show it); the client's certificate from the server's auth context of each call.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import ssl
from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import pytest
from cryptography import x509
from structlog.testing import capture_logs

from devsupport.processes import free_port
from services.common import pki as mesh_pki
from services.common import reloading_channel, tls_files
from services.common.channels import aio_channel, sync_channel
from services.common.shared_settings import ClientTLSSettings, ServerTLSSettings
from tests.support.tls import Authority

SERIAL = "/test.Rotation/ClientSerial"
WAIT = "/test.Rotation/WaitThenSerial"


@pytest.fixture(autouse=True)
def check_every_time(monkeypatch: pytest.MonkeyPatch) -> None:
    # Services look at most every few seconds; the tests look at every handshake and call.
    monkeypatch.setattr(tls_files, "CHECK_SECONDS", 0.0)


def serial_of(pem_or_der: bytes) -> int:
    if pem_or_der.startswith(b"-----"):
        return x509.load_pem_x509_certificate(pem_or_der).serial_number
    return x509.load_der_x509_certificate(pem_or_der).serial_number


def renew(pki: mesh_pki.Pki, service: str, scratch: Path) -> int:
    """Issues `service` a new certificate of the same CA and moves it into place (as a secret
    mount would); its serial."""
    shutil.rmtree(scratch, ignore_errors=True)
    shutil.copytree(pki.directory, scratch)
    fresh = mesh_pki.Pki(scratch)
    fresh.cert(service).unlink()
    mesh_pki.ensure(scratch)
    os.replace(fresh.key(service), pki.key(service))
    os.replace(fresh.cert(service), pki.cert(service))
    return serial_of(pki.cert(service).read_bytes())


def handshake_serial(port: int, ca: Path, cert: Path, key: Path) -> int:
    """The serial of the certificate the server presents to a new TLS connection."""
    context = ssl.create_default_context(cafile=str(ca))
    context.load_cert_chain(str(cert), str(key))
    context.set_alpn_protocols(["h2"])
    with (
        socket.create_connection(("127.0.0.1", port), timeout=5) as raw,
        context.wrap_socket(raw, server_hostname="localhost") as tls,
    ):
        der = tls.getpeercert(binary_form=True)
    assert der is not None
    return serial_of(der)


class Held:
    """Lets a streaming call stay open until the test releases it."""

    def __init__(self) -> None:
        self.started = asyncio.Event()
        self.release = asyncio.Event()


def client_serial(context: grpc.aio.ServicerContext) -> bytes:
    pem = context.auth_context()["x509_pem_cert"][0]
    return str(serial_of(pem)).encode()


def handlers(held: Held) -> grpc.GenericRpcHandler:
    async def serial(request: bytes, context: grpc.aio.ServicerContext) -> bytes:
        return client_serial(context)

    async def wait_then_serial(
        request: bytes, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[bytes]:
        held.started.set()
        await held.release.wait()
        yield client_serial(context)

    return grpc.method_handlers_generic_handler(
        "test.Rotation",
        {
            "ClientSerial": grpc.unary_unary_rpc_method_handler(serial),
            "WaitThenSerial": grpc.unary_stream_rpc_method_handler(wait_then_serial),
        },
    )


@pytest.fixture
async def served(tmp_path: Path) -> AsyncIterator[tuple[mesh_pki.Pki, int, Held]]:
    """A real mTLS server reading its files as the services do (settings → ServerTLS)."""
    pki = mesh_pki.ensure(tmp_path / "pki")
    tls = ServerTLSSettings.from_env(pki.server_env("transcriber")).server_tls
    assert tls is not None and tls.files is not None
    held = Held()
    server = grpc.aio.server()
    server.add_generic_rpc_handlers([handlers(held)])
    port = server.add_secure_port(f"127.0.0.1:{free_port()}", tls.credentials())
    await server.start()
    yield pki, port, held
    held.release.set()
    await server.stop(None)


async def presented(pki: mesh_pki.Pki, port: int, service: str = "operator") -> int:
    cert, key = pki.cert(service), pki.key(service)
    return await asyncio.to_thread(handshake_serial, port, pki.ca_cert, cert, key)


async def test_a_new_connection_gets_the_renewed_server_certificate(
    served: tuple[mesh_pki.Pki, int, Held], tmp_path: Path
) -> None:
    pki, port, _ = served
    first = serial_of(pki.cert("transcriber").read_bytes())
    assert await presented(pki, port) == first
    renewed = renew(pki, "transcriber", tmp_path / "next")
    assert renewed != first
    with capture_logs() as logged:
        assert await presented(pki, port) == renewed
    assert [e["event"] for e in logged] == ["tls_files_reloaded"]


async def test_a_half_written_certificate_keeps_the_old_one_with_one_error(
    served: tuple[mesh_pki.Pki, int, Held], tmp_path: Path
) -> None:
    pki, port, _ = served
    first = serial_of(pki.cert("transcriber").read_bytes())
    whole = pki.cert("transcriber").read_bytes()
    pki.cert("transcriber").write_bytes(whole[: len(whole) // 2])
    with capture_logs() as logged:
        for _ in range(3):
            assert await presented(pki, port) == first
    refused = [e for e in logged if e["event"] == "tls_files_refused"]
    assert len(refused) == 1 and str(pki.cert("transcriber")) in refused[0]["reason"]
    assert refused[0]["log_level"] == "error"
    # A key that is not the certificate's is refused the same way.
    renew(pki, "transcriber", tmp_path / "next")
    pki.key("transcriber").write_bytes(pki.key("worker").read_bytes())
    with capture_logs() as logged:
        assert await presented(pki, port) == first
    assert [e["event"] for e in logged] == ["tls_files_refused"]
    assert "is not the key of" in logged[0]["reason"]


async def test_a_new_client_ca_is_trusted_without_a_restart(
    served: tuple[mesh_pki.Pki, int, Held], tmp_path: Path
) -> None:
    pki, port, _ = served
    other = Authority(tmp_path / "other", "other-ca")
    stranger = other.issue("stranger", server=False)

    async def stranger_serial() -> int:
        return await asyncio.to_thread(
            handshake_serial, port, pki.ca_cert, stranger.cert, stranger.key
        )

    # TLS 1.3: the server's refusal of the client certificate arrives after the handshake.
    with pytest.raises((ssl.SSLError, ConnectionError)):
        await asyncio.to_thread(refused_read, port, pki.ca_cert, stranger.cert, stranger.key)
    bundle = pki.ca_cert.read_bytes() + other.pair.cert.read_bytes()
    pki.ca_cert.with_suffix(".new").write_bytes(bundle)
    os.replace(pki.ca_cert.with_suffix(".new"), pki.ca_cert)
    assert await stranger_serial() == serial_of(pki.cert("transcriber").read_bytes())
    await asyncio.to_thread(accepted_read, port, pki.ca_cert, stranger.cert, stranger.key)


def _session(port: int, ca: Path, cert: Path, key: Path) -> bytes:
    """Opens TLS, speaks HTTP/2's preface and reads the server's first frames (its SETTINGS),
    which a server that refused the client certificate never sends."""
    context = ssl.create_default_context(cafile=str(ca))
    context.load_cert_chain(str(cert), str(key))
    context.set_alpn_protocols(["h2"])
    with (
        socket.create_connection(("127.0.0.1", port), timeout=5) as raw,
        context.wrap_socket(raw, server_hostname="localhost") as tls,
    ):
        tls.sendall(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + b"\x00\x00\x00\x04\x00\x00\x00\x00\x00")
        data = tls.recv(9)
        if not data:
            raise ConnectionError("closed by the server")
        return data


def refused_read(port: int, ca: Path, cert: Path, key: Path) -> None:
    _session(port, ca, cert, key)


def accepted_read(port: int, ca: Path, cert: Path, key: Path) -> None:
    frame = _session(port, ca, cert, key)
    assert frame[3] == 0x04  # a SETTINGS frame: the server speaks to this client


async def test_channels_move_new_calls_to_the_renewed_client_certificate(
    served: tuple[mesh_pki.Pki, int, Held], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pki, port, held = served
    monkeypatch.setattr(reloading_channel, "GRACE_SECONDS", 30.0)
    tls = ClientTLSSettings.from_env(pki.client_env("scheduler")).client_tls
    channel = aio_channel(f"127.0.0.1:{port}", 1 << 20, tls)
    assert isinstance(channel, reloading_channel.ReloadingChannel)
    # Made once, as the services make their stubs.
    serial = channel.unary_unary(SERIAL)
    wait_then_serial = channel.unary_stream(WAIT)
    first = serial_of(pki.cert("scheduler").read_bytes())
    try:
        assert int(await serial(b"", timeout=5)) == first
        in_flight = wait_then_serial(b"", timeout=30)
        await asyncio.wait_for(held.started.wait(), 5)
        old = channel.current()

        renewed = renew(pki, "scheduler", tmp_path / "next")
        assert int(await serial(b"", timeout=5)) == renewed
        assert channel.current() is not old
        # The call that began before the rotation finishes on the old channel, which then
        # closes (long before its grace period ends).
        held.release.set()
        assert [int(reply) async for reply in in_flight] == [first]
        await asyncio.sleep(0.5)
        assert old.get_state() == grpc.ChannelConnectivity.SHUTDOWN

        # A half-written key: calls go on with the renewed certificate.
        pki.key("scheduler").write_bytes(b"-----BEGIN PRIVATE KEY-----\nMIG")
        with capture_logs() as logged:
            assert int(await serial(b"", timeout=5)) == renewed
            assert int(await serial(b"", timeout=5)) == renewed
        assert [e["event"] for e in logged] == ["tls_files_refused"]
    finally:
        await channel.close()


async def test_blocking_channels_follow_the_client_certificate_too(
    served: tuple[mesh_pki.Pki, int, Held], tmp_path: Path
) -> None:
    pki, port, _ = served
    tls = ClientTLSSettings.from_env(pki.client_env("worker")).client_tls
    channel = sync_channel(f"127.0.0.1:{port}", 0, tls)
    assert isinstance(channel, reloading_channel.ReloadingSyncChannel)
    serial = channel.unary_unary(SERIAL)
    try:
        first = await asyncio.to_thread(serial, b"", timeout=5)
        assert int(first) == serial_of(pki.cert("worker").read_bytes())
        renewed = renew(pki, "worker", tmp_path / "next")
        reply, call = await asyncio.to_thread(serial.with_call, b"", timeout=5)
        assert int(reply) == renewed and call.code() == grpc.StatusCode.OK
    finally:
        channel.close()


async def test_closing_the_channel_ends_old_channels_without_their_grace(
    served: tuple[mesh_pki.Pki, int, Held], tmp_path: Path
) -> None:
    pki, port, held = served
    tls = ClientTLSSettings.from_env(pki.client_env("gateway")).client_tls
    channel = aio_channel(f"127.0.0.1:{port}", 1 << 20, tls)
    assert isinstance(channel, reloading_channel.ReloadingChannel)
    in_flight = channel.unary_stream(WAIT)(b"", timeout=60)
    await asyncio.wait_for(held.started.wait(), 5)
    old = channel.current()
    renew(pki, "gateway", tmp_path / "next")
    assert int(await channel.unary_unary(SERIAL)(b"", timeout=5)) != 0
    assert channel.current() is not old
    # Shutting down must not wait the old channel's 10 minutes for the held stream.
    await asyncio.wait_for(channel.close(), 5)
    assert old.get_state() == grpc.ChannelConnectivity.SHUTDOWN
    assert in_flight.cancelled() and await in_flight.code() == grpc.StatusCode.CANCELLED
