"""The real transcriber process with the real bundled model, over real gRPC on loopback: one
decoding slot and its line of waiting calls, and calls that are cancelled or run out of time."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import grpc
import pytest

from devsupport import evalset, processes
from sayit.transcriber.v1 import transcriber_service_pb2 as pb
from tests.support.transcriber_calls import assert_well_ordered, events, request, stub

pytestmark = pytest.mark.model


@pytest.fixture
def single_slot(run_dir: Path) -> processes.ServiceProcess:
    service = processes.transcriber(
        run_dir, "transcriber-1slot", SAYIT_TRANSCRIBER_SLOTS="1", SAYIT_CPU_THREADS="2"
    ).start()
    service.wait_serving()
    yield service  # type: ignore[misc]
    service.stop()


def _start_long_call(addr: str) -> tuple[grpc.Future, threading.Event, list[str]]:
    """Start transcribing the long clip; returns the call, an event set at the first segment,
    and the list of response kinds received so far."""
    long_clip = evalset.clip("en_long_ljspeech_LJ001").read()
    call = stub(addr).TranscribeStream(request(long_clip, "en"), timeout=300)
    first_segment = threading.Event()
    kinds: list[str] = []

    def consume() -> None:
        try:
            for response in call:
                kinds.append(response.WhichOneof("event"))
                if response.HasField("segment"):
                    first_segment.set()
        except grpc.RpcError:
            pass

    threading.Thread(target=consume, daemon=True).start()
    return call, first_segment, kinds


def _wait_info(addr: str, done: Callable[[pb.GetInfoResponse], bool]) -> pb.GetInfoResponse:
    deadline = time.monotonic() + 10
    info = stub(addr).GetInfo(pb.GetInfoRequest())
    while not done(info) and time.monotonic() < deadline:
        time.sleep(0.05)
        info = stub(addr).GetInfo(pb.GetInfoRequest())
    return info


def _cheetah() -> pb.TranscribeStreamRequest:
    return request(evalset.clip("en_pv_cheetah_test").read(), "en")


def test_cancel_stops_decoding_and_frees_the_slot(single_slot: processes.ServiceProcess) -> None:
    addr = single_slot.addr or ""
    info = stub(addr).GetInfo(pb.GetInfoRequest())
    assert (info.slots_total, info.slots_busy, info.calls_waiting) == (1, 0, 0)
    call, first_segment, _ = _start_long_call(addr)
    assert first_segment.wait(120)

    # While the long call holds the only slot, one call may wait for it
    # (SAYIT_TRANSCRIBER_WAITING defaults to the slots) ...
    with ThreadPoolExecutor(1) as pool:
        waiting = pool.submit(events, addr, _cheetah())
        assert _wait_info(addr, lambda i: i.calls_waiting == 1).calls_waiting == 1
        # ... and the next is refused at once.
        with pytest.raises(grpc.RpcError) as caught:
            events(addr, _cheetah())
        assert caught.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert "slots" in caught.value.details() and "busy" in caught.value.details()
        assert not waiting.done()

        call.cancel()
        stopped = _wait_info(addr, lambda i: i.calls_cancelled_total == 1)
        assert stopped.calls_cancelled_total == 1
        # The waiting call took the freed slot and is served.
        transcript = assert_well_ordered(waiting.result(timeout=120))
    assert "platforms" in transcript.text.lower()
    done = _wait_info(addr, lambda i: i.slots_busy == 0)
    assert (done.slots_busy, done.calls_waiting) == (0, 0), "the slot was not freed"
    assert done.calls_completed_total == 1
    time.sleep(2.0)
    later = stub(addr).GetInfo(pb.GetInfoRequest())
    assert later.segments_decoded_total == done.segments_decoded_total, "still decoding"
    # The long clip has ~40 segments; cancelling after the first leaves most undecoded.
    assert later.segments_decoded_total < 20


def test_a_call_cancelled_while_it_waits_leaves_the_line(
    single_slot: processes.ServiceProcess,
) -> None:
    addr = single_slot.addr or ""
    call, first_segment, _ = _start_long_call(addr)
    assert first_segment.wait(120)
    given_up = stub(addr).TranscribeStream(_cheetah(), timeout=300)
    assert _wait_info(addr, lambda i: i.calls_waiting == 1).calls_waiting == 1
    given_up.cancel()
    assert _wait_info(addr, lambda i: i.calls_waiting == 0).calls_waiting == 0
    with ThreadPoolExecutor(1) as pool:
        # Its place in line is free again, and the slot was not handed to it.
        waiting = pool.submit(events, addr, _cheetah())
        assert _wait_info(addr, lambda i: i.calls_waiting == 1).calls_waiting == 1
        call.cancel()
        transcript = assert_well_ordered(waiting.result(timeout=120))
    assert "platforms" in transcript.text.lower()
    info = _wait_info(addr, lambda i: i.slots_busy == 0)
    assert (info.slots_busy, info.calls_waiting, info.calls_completed_total) == (0, 0, 1)


def test_deadline_stops_decoding(single_slot: processes.ServiceProcess) -> None:
    addr = single_slot.addr or ""
    long_clip = evalset.clip("en_long_ljspeech_LJ001").read()
    with pytest.raises(grpc.RpcError) as caught:
        list(stub(addr).TranscribeStream(request(long_clip, "en"), timeout=3.0))
    assert caught.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    deadline = time.monotonic() + 10
    while stub(addr).GetInfo(pb.GetInfoRequest()).slots_busy and time.monotonic() < deadline:
        time.sleep(0.05)
    info = stub(addr).GetInfo(pb.GetInfoRequest())
    assert info.slots_busy == 0 and info.calls_cancelled_total >= 1
