"""The pure pieces of `make bench`: /proc parsing, machine description, ratios, medians, gaps,
growth, layouts, section selection, the table and the JSON file."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import pytest

from bench import machine, procmem, report
from bench.__main__ import SECTIONS, parse_sections
from bench.figures import Figure, largest_gap, median
from bench.memory import quarter_growth
from bench.throughput import layouts

STATUS = """Name:\tpython
VmPeak:\t 1250404 kB
VmHWM:\t  512000 kB
VmRSS:\t  409600 kB
Threads:\t12
"""


def test_parse_status_reads_rss_and_peak_in_mib() -> None:
    memory = procmem.parse_status(STATUS)
    assert memory.peak_mib == 500.0  # 512000 kB / 1024
    assert memory.rss_mib == 400.0


def test_parse_status_without_rss_is_an_error() -> None:
    with pytest.raises(ValueError, match="VmRSS"):
        procmem.parse_status("Name:\tkthreadd\nThreads:\t1\n")


def test_read_this_process() -> None:
    memory = procmem.read(os.getpid())
    assert 0 < memory.rss_mib <= memory.peak_mib


def test_cpu_model_and_ram() -> None:
    cpuinfo = "processor\t: 0\nmodel name\t: AMD EPYC 7B13\nflags\t: fpu\n"
    assert machine.cpu_model(cpuinfo) == "AMD EPYC 7B13"
    assert machine.cpu_model("processor\t: 0\n") == ""
    assert machine.total_ram_gib("MemTotal:       24683520 kB\nMemFree: 1 kB\n") == 23.5


def test_describe_names_the_machine_and_software() -> None:
    description = machine.describe(model="base", model_path="/m", threads=2, preset="accurate")
    for key in ("cpu_model", "cores", "ram_gib", "os", "python", "faster_whisper", "ctranslate2"):
        assert description[key], key
    assert description["threads"] == 2 and description["model"] == "base"
    assert description["git_commit"]


def test_ratio_and_median() -> None:
    assert report.ratio(3.0, 2.0) == 1.5
    assert math.isnan(report.ratio(1.0, 0.0))
    assert math.isnan(report.ratio(1.0, math.nan))
    assert median([3.0, 1.0, 2.0]) == 2.0
    assert median([1.0, 2.0, 3.0, 10.0]) == 2.5


def test_paired_ratios_divide_each_call_by_its_neighbour() -> None:
    # A machine that slows down between pairs slows both calls of a pair: every pair says 1.1.
    assert report.paired_ratios([1.1, 2.2, 3.3], [1.0, 2.0, 3.0]) == pytest.approx([1.1, 1.1, 1.1])
    assert math.isnan(report.paired_ratios([1.0], [0.0])[0])
    with pytest.raises(ValueError):
        report.paired_ratios([1.0, 2.0], [1.0])


def test_largest_gap() -> None:
    assert largest_gap([0.0, 1.0, 4.0, 4.5]) == 3.0
    assert largest_gap([2.0]) == 0.0


def test_quarter_growth() -> None:
    assert quarter_growth([100.0] * 8) == 1.0
    # first quarter [100, 100] -> 100; last quarter [110, 120] -> 115
    assert quarter_growth([100.0, 100.0, 105.0, 105.0, 108.0, 108.0, 110.0, 120.0]) == 1.15
    assert math.isnan(quarter_growth([1.0, 2.0, 3.0]))


def test_layouts_use_every_core() -> None:
    assert layouts(1) == [(1, 1)]
    assert layouts(2) == [(1, 2), (2, 1)]
    assert layouts(6) == [(1, 6), (2, 3), (3, 2), (6, 1)]


def test_parse_sections() -> None:
    assert parse_sections("") == list(SECTIONS)
    # run order, not the order asked
    assert parse_sections("memory, mesh_overhead") == ["mesh_overhead", "memory"]
    with pytest.raises(ValueError, match="nope"):
        parse_sections("mesh_overhead,nope")


FIGURES = [
    Figure("s", "overhead", 1.0234, "ratio", baseline="raw engine", goal="<= 1.05", note="n"),
    Figure("longer_section", "gap_s", 12.5, "s"),
]


def test_table_has_a_header_and_one_aligned_row_per_figure() -> None:
    lines = report.table(FIGURES).splitlines()
    assert lines[0].split()[:5] == ["section", "figure", "value", "unit", "goal"]
    assert len(lines) == 2 + len(FIGURES)
    assert "1.023" in lines[2] and "÷ raw engine; n" in lines[2]
    # the value column starts at the same place on every row
    starts = {line.index(value) for line, value in zip(lines[2:], ("1.023", "12.5"), strict=True)}
    assert len(starts) == 1


def test_write_stores_nan_as_null(tmp_path: Path) -> None:
    path = tmp_path / "out" / "bench.json"
    figures = [*FIGURES, Figure("s", "missing", math.nan, "ratio")]
    report.write(path, report.document({"cores": 2}, figures, True, {"x": "boom"}))
    doc = json.loads(path.read_text())
    assert doc["machine"] == {"cores": 2} and doc["quick"] is True
    assert [f["value"] for f in doc["figures"]] == [1.0234, 12.5, None]
    assert doc["errors"] == {"x": "boom"}
