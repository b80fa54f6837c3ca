from __future__ import annotations

from collections.abc import Iterator

import pytest

from simulators.matomo import MatomoSimulator


@pytest.fixture
def simulator() -> Iterator[MatomoSimulator]:
    with MatomoSimulator() as server:
        yield server  # type: ignore[misc]
