"""Shared pieces of the Umami tests: a simulator per test, its config as environment, day bounds as Umami sees them."""

from __future__ import annotations

from collections.abc import Iterator
from typing import cast

import pytest

from simulators.umami import UmamiSimulator
from sources.umami.settings import ApiVersion
from tests.support.umami import start


@pytest.fixture(params=["2", "3"], ids=["umami2", "umami3"])
def version(request: pytest.FixtureRequest) -> ApiVersion:
    return cast(ApiVersion, request.param)


@pytest.fixture
def simulator(version: str) -> Iterator[UmamiSimulator]:
    sim = start(version=version)
    yield sim
    sim.stop()
