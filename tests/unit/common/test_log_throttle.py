"""services.common.log_throttle: one line per interval, and the count of the ones left out."""

from __future__ import annotations

from services.common.log_throttle import LogThrottle


def test_one_line_per_interval_with_the_skipped_count() -> None:
    now = [100.0]
    throttle = LogThrottle(10.0, clock=lambda: now[0])
    assert throttle.due() == 0
    assert [throttle.due() for _ in range(3)] == [None, None, None]
    now[0] = 109.9
    assert throttle.due() is None
    now[0] = 110.0
    assert throttle.due() == 4
    assert throttle.due() is None
    now[0] = 125.0
    assert throttle.due() == 1
