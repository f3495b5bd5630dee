"""The summary `make crowd` prints, and its verdict."""

from __future__ import annotations

from collections import Counter

from bench.crowd_phase import PhaseResult
from bench.crowd_watchers import CrowdState
from bench.job_accounting import Accounting
from bench.load import percentile


def _calls(phase: PhaseResult) -> str:
    done = sum(phase.codes.values())
    return (
        f"{phase.codes['OK']}/{done} OK, p50 {percentile(phase.latencies, 0.5):5.2f} s, "
        f"p95 {percentile(phase.latencies, 0.95):5.2f} s"
    )


def _counter(counter: Counter[str]) -> str:
    return ", ".join(f"{k} {n}" for k, n in counter.most_common()) or "none"


def print_report(
    without: PhaseResult,
    with_crowd: PhaseResult,
    state: CrowdState,
    opened: int,
    still_open: int,
    accounting: Accounting,
    held: int,
) -> None:
    print("\nshort Transcribe calls (new audio each):")
    print(f"  without watchers   {_calls(without)}")
    print(f"  with watchers      {_calls(with_crowd)}")
    for title, phase in (("without", without), ("with", with_crowd)):
        print(f"  {title} watchers, outcomes: {_counter(phase.codes)}")
        for kind, n in phase.error_kinds.most_common(5):
            print(f"    {n:6d}  {kind}")
    print(
        f"watchers: {opened} open when phase 2 began, {still_open} at its end; "
        f"{state.opened_ever} opens in all, {state.moved} moved on when their job ended"
    )
    print(f"  refused with RetryInfo: {len(state.refused_watchers)} watchers, by kind:")
    for kind, n in state.refusals.most_common():
        print(f"    {n:6d}  {kind}")
    print(f"  ended by an error: {sum(state.errors.values())} watchers, by kind:")
    for kind, n in state.errors.most_common(5):
        print(f"    {n:6d}  {kind}")
    print("Redis connections (peak of each phase):")
    for title, phase in (("without", without), ("with", with_crowd)):
        if phase.redis_error:
            print(f"  {title} watchers: could not ask Redis: {phase.redis_error}")
            continue
        print(f"  {title} watchers: connected_clients {phase.redis_clients_peak}")
        print(f"    by service: {_counter(phase.redis_by_service_peak)}")
        print(f"    by client name: {_counter(phase.redis_by_name_peak)}")
    print("memory (peak RSS of each phase, MiB):   without    with")
    for name in sorted(set(without.rss_peak_mib) | set(with_crowd.rss_peak_mib)):
        print(
            f"  {name:<34} {without.rss_peak_mib.get(name, 0):8.0f} "
            f"{with_crowd.rss_peak_mib.get(name, 0):7.0f}"
        )
    print(
        f"jobs: {accounting.jobs} ("
        + _counter(accounting.states)
        + f"); cancelled at the end, still waiting: {accounting.cancelled_at_end} "
        f"({held} jobs were held); cancelled by the mesh after their call failed: "
        f"{accounting.abandoned}; "
        f"cache hits: {accounting.cache_hits + without.cache_hits + with_crowd.cache_hits}"
    )
    print(f"jobs lost: {len(accounting.lost)}")
    for line in (accounting.lost + accounting.unverified)[:20]:
        print(f"  {line}")


def verdict(
    without: PhaseResult,
    with_crowd: PhaseResult,
    state: CrowdState,
    watchers: int,
    accounting: Accounting,
    max_error_share: float,
) -> int:
    failed = []
    if accounting.lost:
        failed.append(f"{len(accounting.lost)} jobs lost")
    if accounting.unverified:
        failed.append(f"{len(accounting.unverified)} jobs not checked")
    calls = sum(without.codes.values()) + sum(with_crowd.codes.values())
    errors = without.errors + with_crowd.errors
    if not calls or errors / calls > max_error_share:
        failed.append(f"short-call errors {errors}/{calls}")
    watcher_errors = sum(state.errors.values())
    if watcher_errors / max(1, watchers) > max_error_share:
        failed.append(f"watchers ended by an error {watcher_errors}/{watchers}")
    print("FAILED: " + "; ".join(failed) if failed else "PASSED: nothing lost")
    return 1 if failed else 0
