"""A transcriber's slots and the short line of calls allowed to wait for one."""

from __future__ import annotations

import asyncio

from services.common.slots import Slots


async def test_without_a_line_a_busy_transcriber_refuses_at_once() -> None:
    slots = Slots(1)
    assert await slots.acquire()
    assert await slots.acquire() is False
    assert (slots.busy, slots.waiting) == (1, 0)


async def test_callers_wait_in_line_first_come_first_served_up_to_its_length() -> None:
    slots = Slots(1, line=2)
    assert await slots.acquire()
    order: list[str] = []

    async def call(name: str) -> None:
        assert await slots.acquire()
        order.append(name)

    first = asyncio.create_task(call("first"))
    await asyncio.sleep(0)
    second = asyncio.create_task(call("second"))
    await asyncio.sleep(0)
    assert slots.waiting == 2
    assert await slots.acquire() is False  # the line is full
    slots.release()
    assert not slots.try_acquire()  # a newcomer does not jump the line when a slot frees
    await first
    assert order == ["first"] and slots.busy == 1
    slots.release()
    await second
    assert order == ["first", "second"] and (slots.busy, slots.waiting) == (1, 0)
    slots.release()
    assert slots.busy == 0


async def test_a_caller_cancelled_in_line_leaves_it_without_taking_a_slot() -> None:
    slots = Slots(1, line=2)
    assert await slots.acquire()
    gone = asyncio.create_task(slots.acquire())
    stays = asyncio.create_task(slots.acquire())
    await asyncio.sleep(0)
    gone.cancel()
    await asyncio.sleep(0)
    assert gone.cancelled() and slots.waiting == 1
    slots.release()
    assert await stays
    assert slots.busy == 1
    slots.release()
    assert slots.busy == 0


async def test_a_caller_cancelled_as_it_is_handed_a_slot_passes_it_on() -> None:
    slots = Slots(1, line=2)
    assert await slots.acquire()
    gone = asyncio.create_task(slots.acquire())
    stays = asyncio.create_task(slots.acquire())
    await asyncio.sleep(0)
    slots.release()  # handed to `gone` ...
    gone.cancel()  # ... which is cancelled before it runs again
    assert await stays
    assert gone.cancelled()
    assert (slots.busy, slots.waiting) == (1, 0)
    slots.release()
    assert slots.busy == 0
