"""The Python client retries only what is safe, after the server's hinted delay, throttled:
against a small real gRPC SpeechService (tests.support.scripted_speech) that fails as scripted
with the statuses SayIt's own error mapping builds."""

from __future__ import annotations

import itertools
import socket
import threading
import time
from collections.abc import Iterator

import grpc
import pytest

from services.client import ClientError, RetryPolicy, SayItClient
from tests.support.scripted_speech import DOWN, JOB, Script, ScriptedSpeech, serve


@pytest.fixture
def script() -> Script:
    return Script()


@pytest.fixture
def speech(script: Script) -> Iterator[tuple[ScriptedSpeech, str]]:
    server, service, addr = serve(script)
    try:
        yield service, addr
    finally:
        server.stop(0)


def client(addr: str, **options: object) -> SayItClient:
    return SayItClient(addr, timeout=30, **options)  # type: ignore[arg-type]


def gaps(times: list[float]) -> list[float]:
    return [later - earlier for earlier, later in itertools.pairwise(times)]


def test_transcribe_is_sent_once_and_the_hint_reaches_the_caller(
    speech: tuple[ScriptedSpeech, str], script: Script
) -> None:
    service, addr = speech
    script.failures["Transcribe"] = -1
    with client(addr) as sayit, pytest.raises(ClientError) as raised:
        sayit.transcribe(b"RIFF not really audio")
    # A repeat could transcribe (and charge) the audio twice: the server saw it once.
    assert len(service.of("Transcribe")) == 1
    assert raised.value.code == grpc.StatusCode.UNAVAILABLE
    assert raised.value.message == f"{DOWN} (request id req-scripted)"
    assert raised.value.retry_after == 2.0


def test_cancel_is_sent_once(speech: tuple[ScriptedSpeech, str], script: Script) -> None:
    service, addr = speech
    script.failures["CancelJob"] = -1
    with client(addr) as sayit, pytest.raises(ClientError) as raised:
        sayit.cancel_job(JOB)
    assert raised.value.code == grpc.StatusCode.UNAVAILABLE
    assert len(service.of("CancelJob")) == 1


def test_get_job_is_retried_after_the_servers_hint(
    speech: tuple[ScriptedSpeech, str], script: Script
) -> None:
    service, addr = speech
    script.failures["GetJob"], script.hint = 2, 1.2
    with client(addr) as sayit:
        assert sayit.get_job(JOB).name == JOB
    attempts = service.of("GetJob")
    assert len(attempts) == 3
    # gRPC's own backoff would wait at most 0.5 s, then 1 s: these waits are the server's.
    assert all(1.1 <= gap < 3.0 for gap in gaps([a.at for a in attempts])), gaps(
        [a.at for a in attempts]
    )


def test_create_job_is_retried_with_one_idempotency_key(
    speech: tuple[ScriptedSpeech, str], script: Script
) -> None:
    service, addr = speech
    script.failures["CreateJob"], script.hint = 1, 0.1
    with client(addr) as sayit:
        assert sayit.submit(b"RIFF not really audio").name == JOB
        assert sayit.submit(b"RIFF not really audio").name == JOB
    keys = [a.request.idempotency_key for a in service.of("CreateJob")]
    # Two logical calls: the first retried with its own key, the second with a new one.
    assert len(keys) == 3 and keys[0] == keys[1] != keys[2]
    assert all(len(key) == 32 for key in keys)


def test_a_watch_resumes_after_the_last_event_it_saw(
    speech: tuple[ScriptedSpeech, str], script: Script
) -> None:
    service, addr = speech
    script.events, script.break_after, script.hint = 6, 3, 0.2
    with client(addr) as sayit:
        events = list(sayit.watch(JOB))
    assert [e.sequence for e in events] == [1, 2, 3, 4, 5, 6]
    assert events[-1].WhichOneof("kind") == "completed"
    assert [a.request.after_sequence for a in service.of("WatchJob")] == [0, 3]


def test_a_watch_that_keeps_failing_waits_and_gives_up(
    speech: tuple[ScriptedSpeech, str], script: Script
) -> None:
    """A gateway that answers at once but UNAVAILABLE every time (its scheduler is down): the
    watch waits the hinted second between attempts and gives up after `reattach_seconds`,
    instead of re-attaching in a tight loop."""
    service, addr = speech
    script.failures["WatchJob"], script.hint = -1, 1.0
    script.give_up_after = 40  # a client that never stops is ended by NOT_FOUND
    started = time.monotonic()
    with client(addr, reattach_seconds=3.0) as sayit, pytest.raises(ClientError) as raised:
        list(sayit.watch(JOB))
    assert raised.value.code == grpc.StatusCode.UNAVAILABLE
    assert raised.value.message.startswith(f"gave up following {JOB} after 3 s of failures: ")
    assert time.monotonic() - started < 20
    attempts = service.of("WatchJob")
    assert 2 <= len(attempts) <= 12, len(attempts)
    assert min(gaps([a.at for a in attempts])) >= 0.9


def test_retries_are_throttled_when_the_mesh_keeps_failing(
    speech: tuple[ScriptedSpeech, str], script: Script
) -> None:
    service, addr = speech
    script.failures["GetJob"], script.hint = -1, 0.05
    assert (RetryPolicy().max_tokens, RetryPolicy().token_ratio) == (10, 0.1)
    with client(addr) as sayit:
        for _ in range(20):
            with pytest.raises(ClientError) as raised:
                sayit.get_job(JOB)
            assert raised.value.code == grpc.StatusCode.UNAVAILABLE
    # Unthrottled: 20 calls x 5 attempts. Throttled: retries stop once half the tokens are
    # spent (5 failed attempts), and every later call is sent once.
    assert len(service.of("GetJob")) <= 25, len(service.of("GetJob"))
    assert len(service.of("GetJob")) >= 20


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_transcribe_waits_for_a_gateway_that_is_starting(script: Script) -> None:
    port = free_port()
    started: list[ScriptedSpeech] = []
    servers = []

    def start_later() -> None:
        time.sleep(1.0)
        server, service, _ = serve(script, port)
        servers.append(server)
        started.append(service)

    threading.Thread(target=start_later, daemon=True).start()
    try:
        with client(f"127.0.0.1:{port}", connect_timeout=15) as sayit:
            assert sayit.transcribe(b"RIFF not really audio").text == "안녕하세요"
        assert len(started[0].of("Transcribe")) == 1
    finally:
        for server in servers:
            server.stop(0)


def test_transcribe_without_a_gateway_says_nothing_was_sent() -> None:
    port = free_port()
    with (
        client(f"127.0.0.1:{port}", connect_timeout=1) as sayit,
        pytest.raises(ClientError) as raised,
    ):
        sayit.transcribe(b"RIFF not really audio")
    assert raised.value.code == grpc.StatusCode.UNAVAILABLE
    assert raised.value.message == (
        f"could not connect to the gateway at 127.0.0.1:{port} within 1 s; nothing was sent"
    )
