"""Channels that follow their certificate files (rotation without a restart).

gRPC's Python API has no channel credentials that reload themselves, and the services hold
their stubs for the process's life (made once from one channel). So this channel holds a real
channel and, on each call, asks the files whether they changed (a few `stat` calls, at most every
few seconds: services.common.tls_files). When they did, it makes a new channel with the new
certificates for this call and every later one, and closes the old one after `grace_seconds`:
calls in flight on it (a long stream) finish, or are cancelled then. `ReloadingChannel` is the
asyncio one (the services' channels); `ReloadingSyncChannel` the blocking one (a queue worker's
watch of its transcriber's health, whose stream a closed old channel ends: it reconnects).
"""

from __future__ import annotations

import asyncio
import threading
import weakref
from collections.abc import Callable
from typing import Any

import grpc

from services.common.tls import ClientTLS

# Long enough for a chunk's or a live session's stream to end on the channel it started on;
# the old channel closes as soon as its last call ends.
GRACE_SECONDS = 600.0

Factory = Callable[[ClientTLS], grpc.aio.Channel]
SyncFactory = Callable[[ClientTLS], grpc.Channel]


class ReloadingChannel(grpc.aio.Channel):
    def __init__(
        self, tls: ClientTLS, factory: Factory, grace_seconds: float | None = None
    ) -> None:
        assert tls.files is not None
        self._tls = tls
        self._factory = factory
        self._grace_seconds = GRACE_SECONDS if grace_seconds is None else grace_seconds
        self._changed = tls.files.watch(tls.material)
        self._channel = factory(tls)
        # Old channels closing, each with its task (held: a task only weakly referenced may
        # vanish before it is done), and the calls of each channel, to end them at shutdown.
        self._closing: dict[grpc.aio.Channel, asyncio.Task[None]] = {}
        self._calls: dict[grpc.aio.Channel, weakref.WeakSet[Any]] = {}

    def current(self) -> grpc.aio.Channel:
        """The channel for a new call: a new one if the files changed since the last."""
        material = self._changed()
        if material is not None:
            old, self._tls = self._channel, self._tls.renewed(material)
            self._channel = self._factory(self._tls)
            task = asyncio.get_running_loop().create_task(old.close(self._grace_seconds))
            self._closing[old] = task
            task.add_done_callback(lambda _: self._forget(old))
        return self._channel

    def started(self, channel: grpc.aio.Channel, call: Any) -> None:
        self._calls.setdefault(channel, weakref.WeakSet()).add(call)

    def _forget(self, old: grpc.aio.Channel) -> None:
        self._closing.pop(old, None)
        self._calls.pop(old, None)

    async def close(self, grace: float | None = None) -> None:
        # An old channel's close is waiting for its calls (a second close would return at
        # once): ending the calls ends that wait, and the old channel closes.
        closing = list(self._closing.items())
        for old, _ in closing:
            for call in list(self._calls.get(old, ())):
                call.cancel()
        await asyncio.gather(*(task for _, task in closing), return_exceptions=True)
        await self._channel.close(grace)

    async def __aenter__(self) -> ReloadingChannel:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close(None)

    def get_state(self, try_to_connect: bool = False) -> grpc.ChannelConnectivity:
        return self._channel.get_state(try_to_connect)

    async def wait_for_state_change(self, last_observed_state: grpc.ChannelConnectivity) -> None:
        await self._channel.wait_for_state_change(last_observed_state)

    async def channel_ready(self) -> None:
        await self._channel.channel_ready()

    def unary_unary(self, method: str, *args: Any, **kwargs: Any) -> Any:
        return _Switching(self, "unary_unary", method, args, kwargs)

    def unary_stream(self, method: str, *args: Any, **kwargs: Any) -> Any:
        return _Switching(self, "unary_stream", method, args, kwargs)

    def stream_unary(self, method: str, *args: Any, **kwargs: Any) -> Any:
        return _Switching(self, "stream_unary", method, args, kwargs)

    def stream_stream(self, method: str, *args: Any, **kwargs: Any) -> Any:
        return _Switching(self, "stream_stream", method, args, kwargs)


class ReloadingSyncChannel(grpc.Channel):
    def __init__(
        self, tls: ClientTLS, factory: SyncFactory, grace_seconds: float | None = None
    ) -> None:
        assert tls.files is not None
        self._tls = tls
        self._factory = factory
        self._grace_seconds = GRACE_SECONDS if grace_seconds is None else grace_seconds
        self._changed = tls.files.watch(tls.material)
        self._lock = threading.Lock()  # calls come from several threads
        self._channel = factory(tls)
        self._closing: list[threading.Timer] = []

    def current(self) -> grpc.Channel:
        with self._lock:
            material = self._changed()
            if material is not None:
                old, self._tls = self._channel, self._tls.renewed(material)
                self._channel = self._factory(self._tls)
                # A blocking channel's close cancels its calls at once: wait the grace first.
                timer = threading.Timer(self._grace_seconds, old.close)
                timer.daemon = True
                timer.start()
                self._closing.append(timer)
            return self._channel

    def started(self, channel: grpc.Channel, call: Any) -> None:
        pass  # a blocking channel's close cancels its calls itself

    def close(self) -> None:
        with self._lock:
            for timer in self._closing:
                timer.cancel()
                timer.function()
            self._channel.close()

    def __enter__(self) -> ReloadingSyncChannel:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def subscribe(self, callback: Any, try_to_connect: bool = False) -> None:
        self._channel.subscribe(callback, try_to_connect)

    def unsubscribe(self, callback: Any) -> None:
        self._channel.unsubscribe(callback)

    def unary_unary(self, method: str, *args: Any, **kwargs: Any) -> Any:
        return _Switching(self, "unary_unary", method, args, kwargs)

    def unary_stream(self, method: str, *args: Any, **kwargs: Any) -> Any:
        return _Switching(self, "unary_stream", method, args, kwargs)

    def stream_unary(self, method: str, *args: Any, **kwargs: Any) -> Any:
        return _Switching(self, "stream_unary", method, args, kwargs)

    def stream_stream(self, method: str, *args: Any, **kwargs: Any) -> Any:
        return _Switching(self, "stream_stream", method, args, kwargs)


class _Switching:
    """A stub's method: each call goes to the channel current at that moment."""

    def __init__(
        self,
        owner: ReloadingChannel | ReloadingSyncChannel,
        kind: str,
        method: str,
        args: Any,
        kwargs: Any,
    ) -> None:
        self._owner = owner
        self._make = lambda channel: getattr(channel, kind)(method, *args, **kwargs)
        self._channel: grpc.aio.Channel | grpc.Channel | None = None
        self._callable: Any = None

    def _current(self) -> Any:
        channel = self._owner.current()
        if channel is not self._channel:
            self._channel, self._callable = channel, self._make(channel)
        return self._callable

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        call = self._current()(*args, **kwargs)
        self._owner.started(self._channel, call)
        return call

    def __getattr__(self, name: str) -> Any:
        # A blocking stub's `.future(...)` and `.with_call(...)`.
        return getattr(self._current(), name)
