"""Progress as a person sees it: on a terminal one line for the whole run (windows and requests done of the total,
ETA of the run) and the tables in flight while they fit, nothing wrapped or left behind in small terminals; when
piped, periodic lines about the whole run."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

import pytest

from simulators.harness import Faults
from simulators.pirsch import PirschData, PirschSimulator, demo_plan
from sources.common.monitor import RunMonitor
from tests.support import run_cli

from .terminal import Screen, run_in_terminal

LAST = dt.date(2024, 3, 31)
RUN = ["run", "pirsch", "--start", "2024-03-18", "--end", "2024-03-31"]
OVERALL = re.compile(r"pirsch: .*windows, [\d,]+(/~[\d,]+)? requests, [\d,]+ r")


def simulator() -> PirschSimulator:
    sim = PirschSimulator(PirschData(days=20, last_day=LAST, sessions_per_day=(20, 30), paths=30))
    # ~3 s of run: the live display redraws a dozen times
    sim.set_faults(Faults(slow_rate=1.0, slow_seconds=0.01, exempt_paths=(r"/api/v1/token$",)))
    return sim


@pytest.mark.parametrize(("columns", "rows"), [(80, 24), (100, 20), (60, 8)])
def test_a_small_terminal_shows_the_run_without_wrapped_or_repeated_lines(
    columns: int, rows: int, tmp_path: Path
) -> None:
    with simulator() as sim:
        env = {**demo_plan(sim).env, "DLT_DATA_DIR": str(tmp_path / "dlt")}
        status, output = run_in_terminal(RUN, env, tmp_path, columns=columns, rows=rows)
    assert status == 0, output[-3000:]
    screen = Screen(columns, rows)
    screen.feed(output)
    # a progress line wider than the terminal wraps, and the display can no longer erase it
    assert not [line for line in screen.wrapped if "windows" in line or "━" in line or "─" in line], screen.wrapped
    shown = output.decode(errors="replace")
    assert OVERALL.search(shown), "no line for the whole run"
    assert "ETA " in shown
    if rows >= 20:  # room for the tables in flight under the run's line
        assert re.search(r"\n +[a-z_]+ +[━─]+ [\d,]+/[\d,]+  [\d,]+ rows", shown.replace("\r", ""))
    final = screen.everything()
    # the live display is gone: no progress line stayed behind, scrolled off or repeated
    assert not [line for line in final if "windows" in line], final
    summary = [line for line in final if line.startswith("pirsch: 2024-03-18..2024-03-31 into DuckDB file")]
    assert len(summary) == 1, final


def test_piped_progress_lines_are_about_the_whole_run(tmp_path: Path) -> None:
    with simulator() as sim:
        env = {**demo_plan(sim).env, "DLT_DATA_DIR": str(tmp_path / "dlt"), "CLICKHAUL_PROGRESS_EVERY": "0.3"}
        result = run_cli(*RUN, env=env, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    lines = [line for line in result.stderr.splitlines() if "clickhaul.progress" in line]
    assert len(lines) >= 3, result.stderr
    assert all(OVERALL.search(line) for line in lines), lines  # each about the whole run, none about one table
    assert any(re.search(r"\d+/28 tables", line) for line in lines), lines
    done = [int(re.search(r"([\d,]+)(/~?[\d,]+)? windows", line)[1].replace(",", "")) for line in lines]  # type: ignore[index]
    assert done == sorted(done) and done[-1] > done[0]
    assert any("ETA" in line for line in lines)


def test_the_display_fits_any_terminal() -> None:
    monitor = RunMonitor("off", label="pirsch")
    monitor.plan(tables=40)
    for index in range(40):
        monitor.task(f"table_with_a_rather_long_name_{index}", 1000)
        monitor.advance(f"table_with_a_rather_long_name_{index}", windows=index, rows=index * 12345)
    for columns, rows in ((80, 24), (100, 20), (40, 5), (20, 2), (200, 60)):
        lines = monitor.lines(columns, rows)
        assert 1 <= len(lines) <= max(1, rows - 1)
        assert all(len(line) <= columns for line in lines), lines
        assert lines[0].startswith("pirsch: ")
        if 5 <= rows < 42:
            assert lines[-1].strip().startswith("... and ")
