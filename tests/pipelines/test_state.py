"""Ephemeral runners: the pipeline folder is gone, the cursors come back from the destination; and a dataset that
has tables but no state anywhere is never silently reloaded."""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path

import pytest

from simulators.pirsch import PirschData, PirschSimulator, demo_plan
from sources.common.clock import today_utc
from sources.common.errors import ConfigError
from tests.support import Loader

pytestmark = pytest.mark.calendar  # the demo plans and the simulators' traffic end today


def test_lost_pipeline_folder_restores_the_cursor_from_the_destination(tmp_path: Path) -> None:
    today = today_utc()
    data = PirschData(days=30, last_day=today, sessions_per_day=(30, 40), paths=20)
    with PirschSimulator(data) as simulator:
        env = {
            **demo_plan(simulator).env,
            "SOURCES__PIRSCH__START_DATE": (today - dt.timedelta(days=12)).isoformat(),
            "SOURCES__PIRSCH__TIMEZONE": "UTC",
        }
        loader = Loader("pirsch", tmp_path, env)
        loader.run(resources="pages")
        rows = loader.count("pages")
        shutil.rmtree(loader.pipelines_dir)  # the runner was replaced overnight
        simulator.clear_log()
        loader.run(resources="pages")
        days = sorted({r.query["from"] for r in simulator.requests if r.path.endswith("/statistics/page")})
        assert days[0] == (today - dt.timedelta(days=3)).isoformat()  # the restored cursor minus the lookback
        assert loader.count("pages") == rows
        assert loader.query(
            "select count(*) from (select domain_id, day, path, title from pirsch.pages "
            "group by all having count(*) > 1)"
        ) == [(0,)]


def test_tables_without_any_state_are_not_reloaded_unless_asked(tmp_path: Path) -> None:
    last = dt.date(2024, 3, 31)
    with PirschSimulator(PirschData(days=20, last_day=last, sessions_per_day=(30, 40), paths=20)) as simulator:
        first = Loader("pirsch", tmp_path, demo_plan(simulator).env, pipeline_name="nightly")
        first.run(last - dt.timedelta(days=2), last, resources="visitors")
        renamed = Loader("pirsch", tmp_path, demo_plan(simulator).env, pipeline_name="renamed")
        simulator.clear_log()
        with pytest.raises(ConfigError, match="no saved state of pipeline renamed") as raised:
            renamed.run(resources="visitors")
        assert "--full-refresh" in str(raised.value)
        assert simulator.count("/statistics/") == 0
        renamed.run(resources="visitors", full_refresh=True)
        assert simulator.count("/statistics/") > 0
