from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from simulators.webtrekk_analytics import AnalyticsData, WebtrekkAnalyticsSimulator
from tests.support import Loader
from tests.support.webtrekk_analytics import LAST_DAY, make_env


@pytest.fixture(scope="session")
def data() -> AnalyticsData:
    return AnalyticsData(last_day=LAST_DAY, days=61, pages=8)


@pytest.fixture
def simulator(data: AnalyticsData) -> Iterator[WebtrekkAnalyticsSimulator]:
    with WebtrekkAnalyticsSimulator(data, calculation_seconds=0.05) as server:
        yield server


@pytest.fixture
def loader(tmp_path: Path, simulator: WebtrekkAnalyticsSimulator) -> Callable[..., Loader]:
    def build(name: str = "load", **extra: Any) -> Loader:
        workdir = tmp_path / name
        workdir.mkdir(exist_ok=True)
        return Loader("webtrekk", workdir, make_env(simulator, **extra))

    return build
