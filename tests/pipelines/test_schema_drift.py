"""A vendor adds a field, or changes a field's type: the run goes on, the change lands and is reported."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pytest

import simulators.pirsch as pirsch_simulator
from simulators.pirsch import PirschData, PirschSimulator, demo_plan
from tests.support import Loader

LAST = dt.date(2024, 3, 31)


def test_added_and_retyped_fields_load_and_are_reported(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with PirschSimulator(PirschData(days=10, last_day=LAST, sessions_per_day=(30, 40), paths=15)) as simulator:
        loader = Loader("pirsch", tmp_path, demo_plan(simulator).env)
        first = loader.run(LAST - dt.timedelta(days=1), LAST - dt.timedelta(days=1), resources="pages")
        assert first.new_columns == [] and first.misfits == 0

        sort_rows = pirsch_simulator.sort_rows

        def drifted(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
            rows = sort_rows(rows)
            for index, row in enumerate(rows):
                if "path" in row:
                    row["scroll_depth"] = 0.5  # a new field
                    if index % 3 == 0:
                        row["visitors"] = f"{row['visitors']} visitors"  # a retyped field
            return rows

        monkeypatch.setattr(pirsch_simulator, "sort_rows", drifted)
        second = loader.run(LAST, LAST, resources="pages")
        assert second.new_columns == ["pages.scroll_depth", "pages.visitors__v_text"]
        retyped = loader.count("pages", f"day = '{LAST}' and visitors__v_text is not null")
        assert second.misfits == retyped > 0
        rows = loader.query(
            "select visitors, visitors__v_text, scroll_depth from pirsch.pages where day = ? and visitors__v_text "
            "is not null",
            [LAST],
        )
        assert all(visitors is None and text.endswith(" visitors") and depth == "0.5" for visitors, text, depth in rows)
        # yesterday's rows are untouched
        assert loader.count("pages", f"day < '{LAST}' and visitors is null") == 0
        assert "schema: new column(s) pages.scroll_depth" in second.render()
