"""Pirsch test helpers: a loader pointed at a simulator."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from simulators.harness import Faults
from simulators.pirsch import PirschSimulator, demo_plan
from tests.support import Loader

LAST_DAY = dt.date(2024, 3, 31)


def loader_for(simulator: PirschSimulator, workdir: Path, **env: str) -> Loader:
    return Loader("pirsch", workdir, {**demo_plan(simulator).env, **env})


def no_faults() -> Faults:
    return Faults(exempt_paths=(r"/api/v1/token$",))


def destination_config(simulator: PirschSimulator, domain_id: str, **overrides: object) -> object:
    from destinations.pirsch import resolve_config
    from simulators.pirsch import DEMO_CLIENT_ID, DEMO_CLIENT_SECRET

    values = {"reconcile_delay": 0.0, "timeout": 5.0, **overrides}
    return resolve_config(
        base_url=simulator.url,
        client_id=DEMO_CLIENT_ID,
        client_secret=DEMO_CLIENT_SECRET,
        domain_id=domain_id,
        **values,
    )
