"""Fixtures of the interceptor tests (test_interceptors_*.py): one in-process server for all of
them, and the log lines of each test."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Iterator

import grpc
import grpc.aio
import pytest
import pytest_asyncio
import structlog

from services.common import interceptors, logs
from services.common.interceptors import ServiceInterceptor
from tests.support.interceptor_service import generic_handlers
from tests.support.log_capture import LogCapture


@pytest_asyncio.fixture(scope="package")
async def channel() -> AsyncIterator[grpc.aio.Channel]:
    async for client in _serve(ServiceInterceptor()):
        yield client


@pytest_asyncio.fixture(scope="package")
async def edge_channel() -> AsyncIterator[grpc.aio.Channel]:
    """The same service behind an edge interceptor (as the gateway's: public callers)."""
    async for client in _serve(ServiceInterceptor(edge=True)):
        yield client


async def _serve(interceptor: ServiceInterceptor) -> AsyncIterator[grpc.aio.Channel]:
    server = grpc.aio.server(interceptors=[interceptor])
    server.add_generic_rpc_handlers(generic_handlers())
    port = server.add_insecure_port("127.0.0.1:0")
    assert port > 0
    await server.start()
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as client:
            yield client
    finally:
        await server.stop(None)


@pytest.fixture
def logged(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> Iterator[LogCapture]:
    root = logging.getLogger()
    saved = (root.handlers[:], root.level)
    # A fresh proxy, so that a logger cached under another configuration is not reused.
    monkeypatch.setattr(interceptors, "log", logs.get_logger("sayit.rpc"))
    capture = LogCapture(capsys)
    capture.configure("info")
    capture.events("")  # drop anything logged before the test
    capture.lines.clear()
    try:
        yield capture
    finally:
        root.handlers[:], level = saved
        root.setLevel(level)
        structlog.reset_defaults()
        structlog.contextvars.clear_contextvars()
