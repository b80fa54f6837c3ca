"""Every source as the chaos, bad-input and secrets suites see it: how to start its simulator small, the config
that points a run at it, the days to load, and how to expire its tokens in the middle of a run."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb

from pipelines.registry import vendor as registered
from simulators.harness import Faults, SimulatorServer
from sources.common.clock import today_utc
from tests.support.retry import FAST_RETRY_ENV

LAST_DAY = dt.date(2026, 11, 20)


@dataclass
class Vendor:
    name: str
    build: Callable[[Faults], SimulatorServer]  # not started
    config: Callable[[SimulatorServer], dict[str, str]]
    start: dt.date
    end: dt.date
    resources: str | None
    token_paths: tuple[str, ...]  # exempt from faults: each vendor limits token requests
    # make every issued token invalid from some request on; None: the vendor issues none (Matomo's token_auth)
    expire: Callable[[SimulatorServer], None] | None
    secrets: Callable[[SimulatorServer], list[str]]  # configured secrets and every token the simulator issued
    http200_error: Callable[[SimulatorServer], None] | None = None
    extra: dict[str, str] = field(default_factory=dict)

    def env(self, server: SimulatorServer, **extra: str) -> dict[str, str]:
        return {**self.config(server), **FAST_RETRY_ENV, **self.extra, **extra}

    def section(self, key: str) -> str:
        return f"SOURCES__{self.name.upper()}__{key.upper()}"


# -- pirsch -------------------------------------------------------------------------------------------------------
def _pirsch(faults: Faults) -> SimulatorServer:
    from simulators.pirsch import PirschData, PirschSimulator

    data = PirschData(domains=1, days=6, last_day=LAST_DAY, sessions_per_day=(20, 40), paths=20)
    return PirschSimulator(data, faults, token_limit_per_minute=1000)


def _pirsch_config(server: SimulatorServer) -> dict[str, str]:
    from simulators.pirsch import demo_plan

    return {**demo_plan(server).env, "SOURCES__PIRSCH__TIMEZONE": "UTC"}  # type: ignore[arg-type]


def _pirsch_secrets(server: Any) -> list[str]:
    from simulators.pirsch import DEMO_CLIENT_SECRET

    return [DEMO_CLIENT_SECRET, *server.tokens._tokens]


# -- webtrekk -----------------------------------------------------------------------------------------------------
WEBTREKK_LIMITS = [[1000, 1.0], [20000, 60.0]]


def _webtrekk(faults: Faults) -> SimulatorServer:
    from simulators.webtrekk import WebtrekkData, WebtrekkSimulator

    data = WebtrekkData(days=6, last_day=LAST_DAY, pages=400, traffic_pages=40, pages_per_day=(20, 30))
    # A refusal makes the client wait out the window it tripped: a short window keeps that in milliseconds.
    return WebtrekkSimulator(data, faults, rate_limits=[(1000, 0.05)])


def _webtrekk_config(server: Any) -> dict[str, str]:
    from simulators.webtrekk import ENDPOINT

    data = server.data
    return {
        "SOURCES__WEBTREKK__BASE_URL": server.url + ENDPOINT,
        "SOURCES__WEBTREKK__CUSTOMER_ID": data.customer_id,
        "SOURCES__WEBTREKK__LOGIN": data.login,
        "SOURCES__WEBTREKK__PASSWORD": data.password,
        "SOURCES__WEBTREKK__RATE_LIMITS": json.dumps([[1000, 0.05]]),
        "SOURCES__WEBTREKK__EXPORT_TYPES": json.dumps(["content_categories", "content_categories_time"]),
        "SOURCES__WEBTREKK__EXPORT_PAGE_SIZE": "50",
    }


def _webtrekk_secrets(server: Any) -> list[str]:
    return [server.data.password, *server.tokens._tokens]


# -- umami --------------------------------------------------------------------------------------------------------
def _umami(faults: Faults) -> SimulatorServer:
    from simulators.umami import UmamiData, UmamiSimulator

    data = UmamiData(websites=1, days=8, sessions_per_day=(10, 20), extra_paths=5)
    return UmamiSimulator(data, faults, version="3", rate_limit=(100000, 1.0))


def _umami_config(server: Any) -> dict[str, str]:
    from simulators.umami import demo_plan

    return {**demo_plan(server).env, "SOURCES__UMAMI__TIMEZONE": "UTC"}


def _umami_secrets(server: Any) -> list[str]:
    from simulators.umami import DEMO_API_KEY, DEMO_PASSWORD

    return [DEMO_PASSWORD, DEMO_API_KEY, *server.tokens._tokens]


def _umami_days() -> tuple[dt.date, dt.date]:
    today = today_utc()  # Umami's simulated traffic ends today
    return today - dt.timedelta(days=4), today - dt.timedelta(days=2)


# -- opentracker --------------------------------------------------------------------------------------------------
def _opentracker(faults: Faults) -> SimulatorServer:
    from simulators.opentracker import OpentrackerData, OpentrackerSimulator

    data = OpentrackerData(days=6, last_day=LAST_DAY, sessions_per_day=(40, 60), users_per_site=200)
    return OpentrackerSimulator(data, faults)


def _opentracker_config(server: Any) -> dict[str, str]:
    from simulators.opentracker import demo_plan

    return {**demo_plan(server).env, "SOURCES__OPENTRACKER__TIMEZONE": "UTC", "SOURCES__OPENTRACKER__PAGE_LIMIT": "25"}


def _opentracker_secrets(server: Any) -> list[str]:
    from simulators.opentracker import DEMO_PASSWORD

    return [DEMO_PASSWORD, *server.tickets._tokens]


# -- matomo -------------------------------------------------------------------------------------------------------
def _matomo(faults: Faults) -> SimulatorServer:
    from simulators.matomo import MatomoDemoSimulator

    return MatomoDemoSimulator(faults)


def _matomo_config(server: Any) -> dict[str, str]:
    from simulators.matomo import demo_plan

    return {**demo_plan(server).env, "SOURCES__MATOMO__PAGE_SIZE": "10"}  # paged site-days, not single answers


def _matomo_secrets(server: Any) -> list[str]:
    from simulators.matomo import DEMO_VIEW_TOKEN

    return [DEMO_VIEW_TOKEN]


def _matomo_days() -> tuple[dt.date, dt.date]:
    today = today_utc()  # the simulated traffic ends yesterday
    return today - dt.timedelta(days=3), today - dt.timedelta(days=1)


def _set(attribute: str, value: Any) -> Callable[[SimulatorServer], None]:
    return lambda server: setattr(server, attribute, value)


def _opentracker_present() -> bool:
    try:
        registered("opentracker")
        import simulators.opentracker  # noqa: F401
    except Exception:
        return False
    return True


UMAMI_DAYS = _umami_days()
VENDORS: dict[str, Vendor] = {
    "pirsch": Vendor(
        "pirsch", _pirsch, _pirsch_config, LAST_DAY - dt.timedelta(days=3), LAST_DAY - dt.timedelta(days=1),
        "visitors,pages,referrers,countries,platforms", (r"/api/v1/token$",),
        lambda server: expire_every(server, 7),
        _pirsch_secrets,
    ),
    "webtrekk": Vendor(
        "webtrekk", _webtrekk, _webtrekk_config, LAST_DAY - dt.timedelta(days=2), LAST_DAY - dt.timedelta(days=1),
        None, (), lambda server: server.expire_tokens_after(3),  # type: ignore[attr-defined]
        _webtrekk_secrets, http200_error=lambda server: server.refuse_next(3),  # type: ignore[attr-defined]
    ),
    "umami": Vendor(
        "umami", _umami, _umami_config, *UMAMI_DAYS, None, (r"/auth/login$",),
        _set("expire_tokens_after", 5), _umami_secrets,
    ),
    "matomo": Vendor(
        "matomo", _matomo, _matomo_config, *_matomo_days(), None, (), None, _matomo_secrets,
    ),
}  # fmt: skip
if _opentracker_present():
    VENDORS["opentracker"] = Vendor(
        "opentracker", _opentracker, _opentracker_config, LAST_DAY - dt.timedelta(days=2),
        LAST_DAY - dt.timedelta(days=1), "sessions", (r"login_user\.jsp$",),
        _set("expire_tickets_every", 12), _opentracker_secrets,
    )  # fmt: skip


def expire_every(server: Any, requests: int) -> None:
    """Pirsch's simulator has no "expire after N requests" switch: wrap its dispatch to expire every token at
    each `requests`-th statistics request (deterministic, unlike a timer)."""
    dispatch = server.dispatch
    seen = [0]

    def counting(request: Any) -> Any:
        if "/statistics/" in request.path:
            seen[0] += 1
            if seen[0] % requests == 0:
                server.tokens.expire_all()
        return dispatch(request)

    server.dispatch = counting


@contextmanager
def token_expiry(vendor: Vendor, server: SimulatorServer) -> Iterator[None]:
    if vendor.expire is not None:
        vendor.expire(server)
    yield


def snapshot(database: Path, schema: str) -> dict[str, list[tuple[Any, ...]]]:
    """Every table of `schema` without dlt's bookkeeping columns, rows sorted: what a clean run must equal."""
    tables: dict[str, list[tuple[Any, ...]]] = {}
    with duckdb.connect(str(database), read_only=True) as connection:
        names = connection.execute(
            "select table_name from information_schema.tables where table_schema = ? and table_name not like '_dlt%'"
            " order by 1",
            [schema],
        ).fetchall()
        for (table,) in names:
            columns = [
                row[0]
                for row in connection.execute(
                    "select column_name from information_schema.columns where table_schema = ? and table_name = ? "
                    "and column_name not like '_dlt%' order by column_name",
                    [schema, table],
                ).fetchall()
            ]
            listed = ", ".join(f'"{column}"' for column in columns)
            rows = connection.execute(f'select {listed} from "{schema}"."{table}" order by all').fetchall()
            tables[table] = rows
    return tables
