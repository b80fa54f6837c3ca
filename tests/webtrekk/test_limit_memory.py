"""Rate-limit memory across processes: `clickhaul check` and then `clickhaul run` on one account are one sender to
Webtrekk; the run waits as the limit requires and is never refused for what the check did."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from simulators.webtrekk import WebtrekkData, WebtrekkSimulator
from tests.support import run_cli
from tests.support.webtrekk import make_env

# The documented 5 requests per 10 s, scaled to 6 s (check and run fit in it; the run needs more than its half).
LIMITS = [(5, 6.0)]
DAY = dt.date(2026, 11, 19)


def test_a_run_after_a_check_is_not_refused_for_what_the_check_did(tmp_path: Path) -> None:
    with WebtrekkSimulator(WebtrekkData(days=5, last_day=DAY), rate_limits=LIMITS) as simulator:
        env = {
            **make_env(simulator, LIMITS, export_types=["content_categories"], export_page_size=5000),
            "DLT_DATA_DIR": str(tmp_path / "dlt"),
            "CLICKHAUL_RATE_LIMIT_MEMORY": "on",
        }
        checked = run_cli("check", "webtrekk", env=env, cwd=tmp_path)
        assert checked.returncode == 0, checked.stderr
        after_check = len(simulator.arrivals)
        assert after_check >= 3  # connection test, login, logout
        args = ["run", "webtrekk", "--start", DAY.isoformat(), "--end", DAY.isoformat(), "--progress", "off"]
        loaded = run_cli(*args, "--resources", "export_content_categories", env=env, cwd=tmp_path)
        assert loaded.returncode == 0, loaded.stderr
        assert len(simulator.arrivals) - after_check >= 3  # the run alone would have tripped the limit after it
        assert simulator.refusals == 0, simulator.arrivals
        # the memory is a small file under dlt's data directory, per account; no secret in it
        files = list((tmp_path / "dlt" / "clickhaul" / "ratelimits").glob("*.json"))
        assert len(files) == 1 and simulator.data.password not in files[0].read_text()
