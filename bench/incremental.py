"""Requests made by a no-change daily run: a source loads its history, then runs again the same day."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from pathlib import Path
from typing import Any

from simulators.harness import SimulatorServer
from sources.common.clock import today_utc
from tests.support import Loader

TODAY = today_utc()
HISTORY_DAYS = 7


def _pirsch() -> tuple[SimulatorServer, dict[str, str], str | None]:
    from simulators.pirsch import PirschData, PirschSimulator, demo_plan

    server = PirschSimulator(PirschData(domains=2, days=HISTORY_DAYS + 2, last_day=TODAY, sessions_per_day=(20, 40)))
    server.start()
    return server, dict(demo_plan(server).env), None


def _webtrekk() -> tuple[SimulatorServer, dict[str, str], str | None]:
    from bench.webtrekk import env
    from simulators.webtrekk import WebtrekkData, WebtrekkSimulator

    limits = [(1000, 1.0)]
    server = WebtrekkSimulator(WebtrekkData(days=HISTORY_DAYS + 2, last_day=TODAY), rate_limits=limits).start()
    values = env(server.url, limits)
    values["SOURCES__WEBTREKK__EXPORT_TYPES"] = '["content_categories_time", "campaigns"]'
    return server, values, None


def _umami() -> tuple[SimulatorServer, dict[str, str], str | None]:
    from simulators.harness import Faults
    from simulators.umami import UmamiData, UmamiSimulator, demo_plan

    data = UmamiData(websites=1, days=HISTORY_DAYS + 2, sessions_per_day=(20, 40), extra_paths=10)
    server = UmamiSimulator(data=data, faults=Faults()).start()
    return server, dict(demo_plan(server).env), None


def _opentracker() -> tuple[SimulatorServer, dict[str, str], str | None]:
    from simulators.opentracker import OpentrackerData, OpentrackerSimulator, demo_plan

    data = OpentrackerData(days=HISTORY_DAYS + 2, last_day=TODAY, sessions_per_day=(50, 80))
    server = OpentrackerSimulator(data).start()
    return server, dict(demo_plan(server).env), None


SOURCES: dict[str, Callable[[], tuple[SimulatorServer, dict[str, str], str | None]]] = {
    "pirsch": _pirsch,
    "webtrekk": _webtrekk,
    "umami": _umami,
    "opentracker": _opentracker,
}


LOOKBACK_DAYS = 3


def scheduled(vendor: str, env: dict[str, str]) -> dict[str, str]:
    """A scheduled run's settings: history from `HISTORY_DAYS` ago, then the lookback (no fixed range)."""
    section = f"SOURCES__{vendor.upper()}__"
    env = {key: value for key, value in env.items() if not key.endswith(("START_DATE", "END_DATE"))}
    env[section + "START_DATE"] = (TODAY - dt.timedelta(days=HISTORY_DAYS - 1)).isoformat()
    env[section + "LOOKBACK_DAYS"] = str(LOOKBACK_DAYS)
    return env


def no_change_run(vendor: str, workdir: Path) -> dict[str, Any]:
    """The second run of the day asks only the lookback window: at most the requests of a fixed range over it (fewer
    where a table is read per event of a window that came back unchanged: Pirsch's event metadata, Umami's event
    data)."""
    server, env, resources = SOURCES[vendor]()
    try:
        env = scheduled(vendor, env)
        loader = Loader(vendor, workdir, env, pipeline_name=f"bench_incremental_{vendor}")
        first = loader.run(resources=resources)
        server.clear_log()
        again = loader.run(resources=resources)
        served = server.count()
        window = Loader(vendor, workdir / "window", env, pipeline_name=f"bench_window_{vendor}")
        reference = window.run(TODAY - dt.timedelta(days=LOOKBACK_DAYS), TODAY, resources=resources)
        return {
            "first_run_requests": first.requests,
            "no_change_requests": again.requests,
            "lookback_window_requests": reference.requests,
            "lookback_days": LOOKBACK_DAYS,
            "server_requests": served,
            "ratio": round(again.requests / first.requests, 3) if first.requests else None,
        }
    finally:
        server.stop()
