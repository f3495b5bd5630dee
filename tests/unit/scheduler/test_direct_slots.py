"""The scheduler's direct slots and their waiting line, and the routing policy that uses them."""

from __future__ import annotations

import asyncio

import pytest

from services.jobs.schema import DIRECT, QUEUED_ROUTE
from services.scheduler.admission import routing
from services.scheduler.admission.direct_slots import DirectSlots


def slots(total: int = 1, wait: float = 5.0, rtf: float = 0.5) -> DirectSlots:
    return DirectSlots(total, max_wait_seconds=wait, default_rtf=rtf)


async def test_free_slots_are_taken_at_once_then_refused() -> None:
    s = slots(total=2)
    assert s.try_acquire(4.0) and s.try_acquire(4.0)
    assert not s.try_acquire(4.0)
    assert s.busy == 2


async def test_waiters_get_released_slots_first_come_first_served() -> None:
    s = slots(total=1)
    assert s.try_acquire(2.0)
    order: list[str] = []

    async def wait(name: str) -> None:
        assert await s.acquire(2.0)
        order.append(name)

    first = asyncio.create_task(wait("first"))
    await asyncio.sleep(0)
    second = asyncio.create_task(wait("second"))
    await asyncio.sleep(0)
    assert s.waiting == 2
    # A newcomer does not jump the line even when a slot frees.
    s.release(2.0)
    assert not s.try_acquire(1.0)
    await first
    assert order == ["first"] and s.busy == 1
    s.release(2.0)
    await second
    assert order == ["first", "second"] and s.busy == 1 and s.waiting == 0
    s.release(2.0)
    assert s.busy == 0


async def test_a_wait_that_runs_out_returns_false_and_leaves_the_line() -> None:
    s = slots(total=1, wait=0.05)
    assert s.try_acquire(3.0)
    assert await s.acquire(3.0) is False
    assert s.waiting == 0
    s.release(3.0)
    assert s.busy == 0  # nobody was handed the slot
    assert s.try_acquire(1.0)


async def test_a_cancelled_waiter_gives_up_its_place() -> None:
    s = slots(total=1)
    assert s.try_acquire(3.0)
    task = asyncio.create_task(s.acquire(3.0))
    await asyncio.sleep(0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert s.waiting == 0
    s.release(3.0)
    assert s.busy == 0


async def test_a_waiter_cancelled_as_it_is_handed_the_slot_passes_it_on() -> None:
    s = slots(total=1)
    assert s.try_acquire(3.0)
    first = asyncio.create_task(s.acquire(3.0))
    await asyncio.sleep(0)
    second = asyncio.create_task(s.acquire(3.0))
    await asyncio.sleep(0)
    s.release(3.0)  # handed to `first`, which is cancelled before it runs again
    first.cancel()
    with pytest.raises(asyncio.CancelledError):
        await first
    assert await second is True
    assert s.busy == 1 and s.waiting == 0


async def test_expected_wait_counts_half_the_running_work_and_all_the_waiting() -> None:
    s = slots(total=2, wait=10.0, rtf=0.5)
    assert s.try_acquire(8.0) and s.try_acquire(8.0)
    assert s.expected_wait() == pytest.approx((8.0 + 0) * 0.5 / 2)
    waiter = asyncio.create_task(s.acquire(20.0))
    await asyncio.sleep(0)
    assert s.expected_wait() == pytest.approx((8.0 + 20.0) * 0.5 / 2)
    assert s.worth_waiting()
    second = asyncio.create_task(s.acquire(20.0))
    await asyncio.sleep(0)
    assert s.expected_wait() == pytest.approx((8.0 + 40.0) * 0.5 / 2)
    assert not s.worth_waiting()  # 12 s > 10 s
    for task in (waiter, second):
        task.cancel()
    await asyncio.gather(waiter, second, return_exceptions=True)


async def test_no_waiting_when_turned_off_or_without_slots() -> None:
    off = slots(total=1, wait=0.0)
    assert off.try_acquire(1.0)
    assert not off.worth_waiting()
    none = slots(total=0)
    assert not none.try_acquire(1.0)
    assert not none.worth_waiting()


def test_the_real_time_factor_follows_finished_jobs() -> None:
    s = slots(rtf=0.3)
    for _ in range(30):
        s.finished(audio_seconds=10.0, wall_seconds=1.0)
    assert s.rtf == pytest.approx(0.1, abs=0.01)
    s.finished(audio_seconds=0.0, wall_seconds=1.0)  # ignored
    assert s.rtf == pytest.approx(0.1, abs=0.01)


@pytest.mark.parametrize(
    ("seconds", "queue_only", "free", "wait", "expected"),
    [
        (10.0, False, True, False, routing.Route(DIRECT, "", reserved=True)),
        (10.0, False, False, True, routing.Route(DIRECT, "", waits=True)),
        (10.0, False, False, False, routing.Route(QUEUED_ROUTE, "sayit-high")),
        (10.0, True, False, True, routing.Route(QUEUED_ROUTE, "sayit-high")),
        (40.0, False, False, True, routing.Route(QUEUED_ROUTE, "sayit-default")),
    ],
)
def test_routing(
    seconds: float, queue_only: bool, free: bool, wait: bool, expected: routing.Route
) -> None:
    route = routing.choose(
        seconds,
        queue_only=queue_only,
        sync_max_seconds=30.0,
        direct_slot_free=free,
        direct_wait_short=wait,
    )
    assert route == expected


async def test_jobs_sent_ahead_fill_places_beyond_the_slots_then_wait_in_line() -> None:
    s = DirectSlots(2, max_wait_seconds=5.0, default_rtf=0.5, ahead=1)
    assert s.try_acquire(4.0) and s.try_acquire(4.0)
    assert (s.running, s.sent_ahead) == (2, 0)
    assert s.try_acquire(4.0)  # sent ahead: waits at the transcriber for a slot
    assert (s.busy, s.running, s.sent_ahead) == (3, 2, 1)
    assert not s.try_acquire(4.0)
    waiter = asyncio.create_task(s.acquire(4.0))
    await asyncio.sleep(0)
    assert s.waiting == 1
    s.release(4.0)  # the first job finished: the one in line takes its place
    assert await waiter
    assert (s.busy, s.waiting) == (3, 0)
    for _ in range(3):
        s.release(4.0)
    assert (s.busy, s.running, s.sent_ahead) == (0, 0, 0)


def test_nothing_is_sent_ahead_without_direct_slots() -> None:
    s = DirectSlots(0, max_wait_seconds=5.0, default_rtf=0.5, ahead=2)
    assert s.ahead == 0
    assert not s.try_acquire(1.0)


def test_expected_wait_counts_all_of_the_work_sent_ahead() -> None:
    s = DirectSlots(2, max_wait_seconds=10.0, default_rtf=0.5, ahead=2)
    for _ in range(3):
        assert s.try_acquire(8.0)
    # Two jobs decode (half of their 16 s still to do, on average), one waits at a transcriber.
    assert s.expected_wait() == pytest.approx((8.0 + 8.0) * 0.5 / 2)
    assert s.try_acquire(8.0)
    assert s.expected_wait() == pytest.approx((8.0 + 16.0) * 0.5 / 2)
