from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from simulators.harness import Faults
from tests.support import Loader

from .vendors import VENDORS, Vendor, snapshot

_CLEAN: dict[str, dict[str, list[tuple[Any, ...]]]] = {}


def clean_tables(vendor: Vendor, workdir: Path) -> dict[str, list[tuple[Any, ...]]]:
    """The tables of a run without faults, once per vendor and session: every fault run must equal them."""
    if vendor.name not in _CLEAN:
        with vendor.build(Faults(exempt_paths=vendor.token_paths)) as server:
            loader = Loader(vendor.name, workdir, vendor.env(server))
            loader.run(vendor.start, vendor.end, resources=vendor.resources)
        _CLEAN[vendor.name] = snapshot(loader.database, vendor.name)
        assert any(_CLEAN[vendor.name].values()), f"the clean {vendor.name} run loaded nothing"
    return _CLEAN[vendor.name]


@pytest.fixture(params=sorted(VENDORS))
def vendor(request: pytest.FixtureRequest) -> Vendor:
    return VENDORS[request.param]


@pytest.fixture
def clean(vendor: Vendor, tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[tuple[Any, ...]]]:
    return clean_tables(vendor, tmp_path_factory.mktemp(f"clean_{vendor.name}"))
