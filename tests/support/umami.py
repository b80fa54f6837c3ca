"""Umami test helpers: a small simulator, its config as environment, day bounds as Umami sees them."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

from simulators.harness import Faults
from simulators.umami import UmamiData, UmamiSimulator, demo_plan
from sources.common.clock import today_utc
from sources.common.windows import DateWindow
from tests.support import Loader
from tests.support.retry import FAST_RETRY_ENV

TZ = "Europe/Berlin"


TODAY = today_utc()


def small_data(**overrides: Any) -> UmamiData:
    values: dict[str, Any] = dict(websites=1, days=40, sessions_per_day=(25, 45), extra_paths=30)
    values.update(overrides)
    return UmamiData(**values)


def start(**kwargs: Any) -> UmamiSimulator:
    kwargs.setdefault("data", small_data())
    kwargs.setdefault("faults", Faults(exempt_paths=(r"/auth/login$",)))
    return UmamiSimulator(**kwargs).start()


def loader(sim: UmamiSimulator, workdir: Path, **extra: str) -> Loader:
    env = {**demo_plan(sim).env, "SOURCES__UMAMI__TIMEZONE": TZ, **FAST_RETRY_ENV, **extra}
    return Loader("umami", workdir, env)


def bounds(day: dt.date, tz: str = TZ) -> tuple[float, float]:
    """The instants the source asks for one local day: [midnight, next midnight - 1 ms] in seconds."""
    window = DateWindow(day, day, tz)
    return window.start_at.timestamp(), (int(window.end_at.timestamp() * 1000) - 1) / 1000.0
