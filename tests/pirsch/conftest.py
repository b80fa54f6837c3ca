from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from simulators.pirsch import PirschData, PirschSimulator
from tests.support import Loader
from tests.support.pirsch import LAST_DAY, loader_for


@pytest.fixture
def simulator() -> Iterator[PirschSimulator]:
    with PirschSimulator(PirschData(days=30, last_day=LAST_DAY, sessions_per_day=(60, 120))) as server:
        yield server  # type: ignore[misc]


@pytest.fixture
def loader(simulator: PirschSimulator, tmp_path: Path) -> Loader:
    return loader_for(simulator, tmp_path)
