from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from simulators.webtrekk import WebtrekkData, WebtrekkSimulator
from tests.support import Loader
from tests.support.webtrekk import FAST_LIMITS, LAST_DAY, make_env


@pytest.fixture(scope="session")
def data() -> WebtrekkData:
    return WebtrekkData(days=20, last_day=LAST_DAY)


@pytest.fixture
def simulator(data: WebtrekkData) -> Iterator[WebtrekkSimulator]:
    server = WebtrekkSimulator(data, rate_limits=FAST_LIMITS)
    with server:
        yield server


@pytest.fixture
def loader(tmp_path: Path, simulator: WebtrekkSimulator) -> Callable[..., Loader]:
    def build(name: str = "load", limits: Any = FAST_LIMITS, **extra: Any) -> Loader:
        workdir = tmp_path / name
        workdir.mkdir(exist_ok=True)
        return Loader("webtrekk", workdir, make_env(simulator, limits, **extra))

    return build
