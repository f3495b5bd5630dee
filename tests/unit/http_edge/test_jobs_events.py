"""The job event stream: Last-Event-ID parsing, SSE framing, heartbeats while quiet, the end
after the terminal event, a gateway error as an `error` event, and the call cancelled on close."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import grpc
import pytest

from sayit.common.v1 import event_pb2, job_pb2
from sayit.speech.v1 import speech_service_pb2 as pb
from services.http_edge import errors, job_events

NAME = "jobs/0123456789abcdef0123456789abcdef"


@pytest.mark.parametrize(
    ("header", "after", "expected"),
    [
        (None, None, 0),
        (None, 7, 7),
        ("12", None, 12),
        (" 12 ", 3, 12),  # the header wins over ?after=
        ("", 5, 5),  # an empty id is no id (what an EventSource sends after `id:` reset)
        ("0", 9, 0),
        (str(2**63 - 1), None, 2**63 - 1),
    ],
)
def test_resume_after(header: str | None, after: int | None, expected: int) -> None:
    assert job_events.resume_after(header, after) == expected


@pytest.mark.parametrize("header", ["abc", "-1", "1.5", "+3", "١٢", str(2**63), "0x10"])
def test_bad_last_event_id_is_400(header: str) -> None:
    with pytest.raises(errors.ApiError) as caught:
        job_events.resume_after(header, None)
    assert caught.value.status == 400
    assert caught.value.param == "Last-Event-ID"
    assert "Last-Event-ID must be the id of an event" in caught.value.message


def event(sequence: int, **kind: Any) -> event_pb2.JobEvent:
    return event_pb2.JobEvent(name=NAME, job_id=NAME[5:], sequence=sequence, **kind)


ACCEPTED = event(1, accepted=event_pb2.JobAccepted(routing=job_pb2.ROUTING_QUEUED))
PROGRESS = event(2, progress=job_pb2.JobProgress(fraction=0.5))
COMPLETED = event(3, completed=event_pb2.JobCompleted())


def parse(stream: bytes) -> list[dict[str, Any]]:
    """text/event-stream -> events as {"id", "event", "data"} (comments as {"comment"})."""
    out: list[dict[str, Any]] = []
    for block in stream.decode().split("\n\n"):
        if not block:
            continue
        fields: dict[str, Any] = {}
        for line in block.split("\n"):
            name, _, value = line.partition(": ")
            if name == "":
                fields["comment"] = value
            else:
                fields[name] = json.loads(value) if name == "data" else value
        out.append(fields)
    return out


def test_event_frame() -> None:
    frame, last = job_events.event_frame(PROGRESS)
    assert frame.startswith(b"id: 2\nevent: progress\ndata: {") and frame.endswith(b"}\n\n")
    assert last is False
    (parsed,) = parse(frame)
    assert parsed["data"]["type"] == "progress" and parsed["data"]["progress"]["fraction"] == 0.5
    assert set(parsed["data"]) == {"job_id", "name", "sequence", "time", "type", "progress"}
    assert job_events.event_frame(COMPLETED)[1] is True
    for terminal in ("failed", "cancelled"):
        message = event(9, **{terminal: getattr(event_pb2, f"Job{terminal.title()}")()})
        assert job_events.event_frame(message)[1] is True


def rpc_error(code: grpc.StatusCode, details: str) -> grpc.aio.AioRpcError:
    return grpc.aio.AioRpcError(code, grpc.aio.Metadata(), grpc.aio.Metadata(), details=details)


class Call:
    """A WatchJob call: `script` items are JobEvents, ("wait", seconds), or an error."""

    def __init__(self, *script: Any) -> None:
        self.script = list(script)
        self.cancelled = False
        self.reads = 0

    async def read(self) -> Any:
        self.reads += 1
        while self.script:
            item = self.script.pop(0)
            if isinstance(item, tuple):
                await asyncio.sleep(item[1])
                continue
            if isinstance(item, Exception):
                raise item
            return pb.WatchJobResponse(event=item)
        if not self.cancelled:
            await asyncio.sleep(3600)
        return grpc.aio.EOF

    def cancel(self) -> bool:
        self.cancelled = True
        return True


async def collect(stream: job_events.WatchStream) -> list[dict[str, Any]]:
    return parse(b"".join([frame async for frame in stream.frames()]))


async def test_stream_ends_after_the_terminal_event() -> None:
    call = Call(ACCEPTED, PROGRESS, COMPLETED, event(4, progress=job_pb2.JobProgress()))
    stream = job_events.WatchStream(call, heartbeat_seconds=5)
    await stream.open()
    events = await collect(stream)
    assert [(e["id"], e["event"]) for e in events] == [
        ("1", "accepted"),
        ("2", "progress"),
        ("3", "completed"),
    ]
    stream.close()
    assert call.cancelled


async def test_heartbeat_while_quiet() -> None:
    call = Call(ACCEPTED, ("wait", 0.25), COMPLETED)
    stream = job_events.WatchStream(call, heartbeat_seconds=0.1)
    await stream.open()
    events = await collect(stream)
    assert events[0]["event"] == "accepted" and events[-1]["event"] == "completed"
    heartbeats = [e for e in events if "comment" in e]
    assert len(heartbeats) >= 1 and heartbeats[0]["comment"] == "keepalive"
    assert len(events) == 2 + len(heartbeats)
    # A heartbeat does not cancel the pending read, and nothing is read after the last event.
    assert call.reads == 2


async def test_error_at_open_is_raised() -> None:
    stream = job_events.WatchStream(Call(rpc_error(grpc.StatusCode.NOT_FOUND, "no job")), 5)
    with pytest.raises(grpc.RpcError) as caught:
        await stream.open()
    assert caught.value.code() == grpc.StatusCode.NOT_FOUND


async def test_quiet_open_does_not_wait_for_an_event() -> None:
    stream = job_events.WatchStream(Call(("wait", 0.3), COMPLETED), 5)
    await stream.open(wait_seconds=0.05)  # returns although no event came yet
    events = await collect(stream)
    assert [e["event"] for e in events] == ["completed"]


async def test_error_after_start_is_an_error_event() -> None:
    call = Call(ACCEPTED, rpc_error(grpc.StatusCode.INTERNAL, "internal error (request r1)"))
    stream = job_events.WatchStream(call, 5)
    await stream.open()
    events = await collect(stream)
    assert events[0]["event"] == "accepted"
    assert events[1] == {
        "event": "error",
        "data": {
            "error": {
                "message": "internal error (request r1)",
                "type": "server_error",
                "param": None,
                "code": "internal",
            }
        },
    }
    assert "id" not in events[1]  # Last-Event-ID stays the last real event


async def test_stream_ending_without_terminal_event() -> None:
    call = Call(ACCEPTED)
    call.cancelled = True  # ends with EOF once the script is done
    stream = job_events.WatchStream(call, 5)
    await stream.open()
    assert [e["event"] for e in await collect(stream)] == ["accepted"]


async def test_close_cancels_the_pending_read_and_the_call() -> None:
    call = Call(ACCEPTED)
    stream = job_events.WatchStream(call, 5)
    await stream.open()
    frames = stream.frames()
    assert b"event: accepted" in await anext(frames)
    reading = asyncio.ensure_future(anext(frames))
    await asyncio.sleep(0.05)
    assert not reading.done()
    stream.close()
    reading.cancel()
    await asyncio.sleep(0)
    assert call.cancelled
    assert stream.pending is not None and stream.pending.cancelled()
