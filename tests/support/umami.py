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


# -- the Umami destination ------------------------------------------------------------------------------
CHROME = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36"
)


def new_website(sim: UmamiSimulator, domain: str = "shop.example") -> str:
    """A fresh website (no generated traffic): it holds exactly what is sent to it."""
    import httpx

    from simulators.umami.server import DEMO_PASSWORD, DEMO_USERNAME

    token = httpx.post(f"{sim.url}/api/auth/login", json={"username": DEMO_USERNAME, "password": DEMO_PASSWORD}).json()[
        "token"
    ]
    answer = httpx.post(
        f"{sim.url}/api/websites", json={"name": domain, "domain": domain}, headers={"Authorization": f"Bearer {token}"}
    )
    return str(answer.json()["id"])


def destination_config(sim: UmamiSimulator, website: str, **overrides: Any) -> Any:
    from destinations.umami import resolve_config
    from simulators.umami.server import DEMO_PASSWORD, DEMO_USERNAME

    values: dict[str, Any] = {"reconcile_delay": 0.0, "timeout": 5.0, "hostname": "shop.example", **overrides}
    return resolve_config(
        base_url=sim.url, username=DEMO_USERNAME, password=DEMO_PASSWORD, website_id=website, **values
    )


def sent_urls(sim: UmamiSimulator, website: str) -> Any:
    """Every event the website holds, counted by URL path."""
    import collections

    return collections.Counter(event.path for session in sim.traffic.sent_sessions(website) for event in session.events)
