"""Matomo test helpers: a config pointing at a simulator, tables of hits to push, and reading them back."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import duckdb

from destinations.matomo import MatomoConfig, make_config
from simulators.matomo import DEMO_SUPERUSER_TOKEN, MatomoSimulator
from tests.support import sql_now


def config_for(simulator: MatomoSimulator, token: str | None = DEMO_SUPERUSER_TOKEN, **overrides: Any) -> MatomoConfig:
    values: dict[str, Any] = {"idsite": 1, **overrides}
    return make_config(f"{simulator.url}/matomo.php", token, **values)


def database(tmp_path: Path) -> Path:
    return tmp_path / "warehouse.duckdb"


def create_table(path: Path, table: str, select_sql: str) -> None:
    schema = table.split(".")[0]
    with duckdb.connect(str(path)) as connection:
        connection.execute(f"create schema if not exists {schema}")
        connection.execute(f"create or replace table {table} as {select_sql}")


def create_hits_table(path: Path, rows: int, visitors: int = 997, table: str = "events.hits") -> None:
    """`rows` page views of `visitors` visitors in the last hours, each with a unique URL."""
    create_table(
        path,
        table,
        f"""select substr(md5((i % {visitors})::varchar), 1, 16) as visitor_id,
                   'https://shop.example/p/' || i as page_url,
                   'Page ' || i as page_title,
                   {sql_now()} - interval '6 hours' + to_seconds(i * 0.1) as timestamp,
                   i as event_id
            from range({rows}) t(i)""",
    )


def query(path: Path, sql: str) -> list[tuple[Any, ...]]:
    with duckdb.connect(str(path), read_only=True) as connection:
        return connection.execute(sql).fetchall()


def hit(site: int, visitor: int, moment: float, url: str, **params: Any) -> dict[str, str]:
    """One tracking request of visitor number `visitor` at unix time `moment` (sent back-dated with `cdt`)."""
    values = {
        "idsite": str(site),
        "rec": "1",
        "_id": f"{visitor:016x}",
        "url": url,
        "action_name": url.rsplit("/", 1)[-1] or "home",
        "cdt": str(int(moment)),
        "cip": f"203.0.113.{visitor % 250}",
        **{key: str(value) for key, value in params.items()},
    }
    return values


def track(simulator: MatomoSimulator, hits: list[dict[str, str]]) -> None:
    """Store `hits` through the simulator's bulk tracking endpoint, as a push would."""
    import httpx

    answer = httpx.post(
        f"{simulator.url}/matomo.php", json={"requests": hits, "token_auth": DEMO_SUPERUSER_TOKEN}, timeout=30
    ).json()
    assert answer["tracked"] == len(hits), answer


def invalidate(simulator: MatomoSimulator, site: int, days: list[Any]) -> None:
    """What a push does after back-dated hits: CoreAdminHome.invalidateArchivedReports for their days."""
    import httpx

    body = {
        "module": "API",
        "format": "json",
        "method": "CoreAdminHome.invalidateArchivedReports",
        "idSites": str(site),
        "dates": ",".join(str(day) for day in days),
        "token_auth": DEMO_SUPERUSER_TOKEN,
    }
    assert httpx.post(f"{simulator.url}/index.php", data=body, timeout=30).json()[0].startswith("Success")
