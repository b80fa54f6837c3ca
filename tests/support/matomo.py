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


MIGRATION_UA = (
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 "
    "Safari/605.1.15"
)


def seed_visits(simulator: MatomoSimulator, first: Any, last: Any, visits_per_day: int, seed: int = 0) -> Any:
    """Visits of site 1 on each UTC day `first`..`last` with every kind of action Matomo keeps: 1-5 page views a
    minute or two apart (the first with a referrer now and then), events with and without name and value,
    downloads, outlinks, site searches, goal conversions and e-commerce orders; a few visits start just before
    midnight and run into the next day. Stored back-dated through the bulk tracking API, in time order. Returns a
    Counter of the hits by kind (`action`, `event`, `download`, ...), what a migration must account for."""
    import collections
    import datetime as dt
    import json
    import random

    rng = random.Random(seed)
    hits: list[dict[str, str]] = []
    kinds: collections.Counter[str] = collections.Counter()
    day = first
    while day <= last:
        start = dt.datetime.combine(day, dt.time(), dt.UTC).timestamp()
        for number in range(visits_per_day):
            visitor = rng.getrandbits(62)
            # every tenth visit starts in the day's last minutes: its later actions land on the next UTC day
            moment = start + (86400 - rng.uniform(60, 300) if number % 10 == 0 else rng.uniform(600, 86400 - 3600))
            ua = {"ua": MIGRATION_UA}
            referrer = rng.choice((None, "https://www.google.com/search", "https://partner.example/post"))
            for index in range(rng.randint(1, 5)):
                page = f"https://site1.example{rng.choice(('/', '/pricing', '/docs', '/blog/launch', '/signup'))}"
                extra = {"urlref": referrer} if index == 0 and referrer else {}
                hits.append(hit(1, visitor, moment, page, **ua, **extra))
                kinds["action"] += 1
                roll = rng.random()
                later = moment + rng.randint(2, 15)
                if roll < 0.25:
                    event = {"e_c": "cta", "e_a": rng.choice(("click", "view"))}
                    if rng.random() < 0.5:
                        event |= {"e_n": "hero", "e_v": str(rng.randint(1, 9))}
                    hits.append(hit(1, visitor, later, page, **ua, **event))
                    kinds["event"] += 1
                elif roll < 0.33:
                    hits.append(hit(1, visitor, later, page, **ua, download="https://site1.example/files/guide.pdf"))
                    kinds["download"] += 1
                elif roll < 0.40:
                    hits.append(hit(1, visitor, later, page, **ua, link="https://github.com/clickhaul"))
                    kinds["outlink"] += 1
                elif roll < 0.46:
                    search = {"search": rng.choice(("install", "pricing")), "search_count": str(rng.randint(0, 9))}
                    hits.append(hit(1, visitor, later, "https://site1.example/search", **ua, **search))
                    kinds["search"] += 1
                elif roll < 0.50:
                    hits.append(hit(1, visitor, later, page, **ua, idgoal="1", revenue="5"))
                    kinds["goal"] += 1
                elif roll < 0.52:
                    items = json.dumps([["SKU1", "Guide", "books", 12.5, 1]])
                    order = {"idgoal": "0", "ec_id": f"order-{visitor}-{index}", "ec_items": items, "revenue": "12.5"}
                    hits.append(hit(1, visitor, later, page, **ua, **order))
                    kinds["ecommerceOrder"] += 1
                moment += rng.uniform(20, 180)
        day += dt.timedelta(days=1)
    hits.sort(key=lambda params: int(params["cdt"]))
    for begin in range(0, len(hits), 500):
        track(simulator, hits[begin : begin + 500])
    return kinds
