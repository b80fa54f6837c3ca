"""`clickhaul migrate` end to end against the simulators: Opentracker sessions into Umami (2 and 3) and Pirsch,
Umami events into Pirsch, Matomo's visitor log into Umami (2 and 3) and Pirsch.
Each migration's reconciliation is exact (every difference between the two sides is a
counted cause), a second run sends nothing, and the reconciliation lands in migrate.reconciliation and a page."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import duckdb
import pytest

from pipelines.migrate import run_migrate
from simulators.matomo import MatomoSimulator
from simulators.opentracker import OpentrackerData, OpentrackerSimulator
from simulators.opentracker import demo_plan as opentracker_plan
from simulators.pirsch import DEMO_CLIENT_ID, DEMO_CLIENT_SECRET, PirschData, PirschSimulator
from simulators.umami import demo_plan as umami_plan
from simulators.umami.server import DEMO_PASSWORD, DEMO_USERNAME
from sources.common.clock import today_utc
from sources.common.config import environment
from sources.common.errors import ConfigError
from tests.support.retry import FAST_RETRY_ENV
from tests.support.umami import new_website, start

pytestmark = pytest.mark.calendar

SITE = "www.example.com"


def opentracker() -> OpentrackerSimulator:
    data = OpentrackerData(sites=(SITE,), sessions_per_day=(15, 25), days=6, max_hours_per_page=1)
    return OpentrackerSimulator(data).start()


def umami_env(sim: object, website: str) -> dict[str, str]:
    return {
        "DESTINATION__UMAMI__BASE_URL": sim.url,  # type: ignore[attr-defined]
        "DESTINATION__UMAMI__USERNAME": DEMO_USERNAME,
        "DESTINATION__UMAMI__PASSWORD": DEMO_PASSWORD,
        "DESTINATION__UMAMI__WEBSITE_ID": website,
        "DESTINATION__UMAMI__RECONCILE_DELAY": "0",
    }


def pirsch_env(sim: PirschSimulator, domain: str) -> dict[str, str]:
    return {
        "DESTINATION__PIRSCH__BASE_URL": sim.url,
        "DESTINATION__PIRSCH__CLIENT_ID": DEMO_CLIENT_ID,
        "DESTINATION__PIRSCH__CLIENT_SECRET": DEMO_CLIENT_SECRET,
        "DESTINATION__PIRSCH__DOMAIN_ID": domain,
        "DESTINATION__PIRSCH__RECONCILE_DELAY": "0",
    }


def migrate_twice(source: str, target: str, env: dict[str, str], tmp_path: Path, first: dt.date, last: dt.date):  # type: ignore[no-untyped-def]
    database = tmp_path / f"clickhaul_{source}.duckdb"
    page = tmp_path / "migrate.html"
    with environment({**env, **FAST_RETRY_ENV, "DLT_DATA_DIR": str(tmp_path / "dlt")}):
        migration = run_migrate(source, target, first, last, database=database, workdir=tmp_path, html_path=page)
        again = run_migrate(source, target, first, last, database=database, workdir=tmp_path, html_path=page)
    return database, page, migration, again


@pytest.mark.parametrize("version", ["2", "3"])
def test_opentracker_to_umami_reconciles_exactly_and_a_rerun_sends_nothing(version: str, tmp_path: Path) -> None:
    first, last = today_utc() - dt.timedelta(days=3), today_utc() - dt.timedelta(days=2)
    with opentracker() as ot:
        umami = start(version=version)
        try:
            website = new_website(umami, SITE)
            env = {**opentracker_plan(ot).env, **umami_env(umami, website)}
            database, page, migration, again = migrate_twice("opentracker", "umami", env, tmp_path, first, last)
        finally:
            umami.stop()
    print(migration.render())
    assert migration.loaded and not again.loaded
    assert migration.push.tracked > 0 and migration.unexplained == 0, migration.render()
    pageviews = [row for row in migration.rows if row[1] == "pageviews"]
    assert all(row[5] > 0 and row[5] == row[4] for row in pageviews)
    assert (again.push.sent, again.push.requests) == (0, 0) and again.unexplained == 0
    with duckdb.connect(str(database), read_only=True) as connection:
        stored = connection.execute(
            "select count(*), sum(abs(unexplained)) from migrate.reconciliation where target = 'umami'"
        ).fetchall()
    assert stored == [(6, 0)]
    assert "Reconciliation: <b>exact</b>" in page.read_text()


def test_opentracker_and_umami_to_pirsch_reconcile_exactly(tmp_path: Path) -> None:
    first, last = today_utc() - dt.timedelta(days=3), today_utc() - dt.timedelta(days=2)
    # Pirsch's own limit, 10 token calls a minute: the clients of a migrate run (push, checks, read-back) share one.
    pirsch = PirschSimulator(PirschData(domains=1, days=3)).start()
    try:
        domain = pirsch.add_domain(SITE)
        with opentracker() as ot:
            env = {**opentracker_plan(ot).env, **pirsch_env(pirsch, domain)}
            _, _, migration, again = migrate_twice("opentracker", "pirsch", env, tmp_path / "ot", first, last)
        assert migration.push.tracked > 0 and migration.unexplained == 0, migration.render()
        assert again.push.sent == 0 and again.unexplained == 0
        # Umami's events (its demo website, with custom events) into a second Pirsch domain.
        umami = start(version="3")
        try:
            plan = umami_plan(umami)
            website = umami.website_ids[0]
            hostname = next(w["domain"] for w in umami.website_list() if w["id"] == website)
            second = pirsch.add_domain(hostname)
            env = {**plan.env, "SOURCES__UMAMI__WEBSITE_IDS": website, "SOURCES__UMAMI__TIMEZONE": "UTC",
                   **pirsch_env(pirsch, second)}  # fmt: skip
            _, _, moved, _ = migrate_twice("umami", "pirsch", env, tmp_path / "um", first, first)
        finally:
            umami.stop()
        print(moved.render())
        assert moved.push.tracked > 0 and moved.unexplained == 0, moved.render()
        assert any(row[1] == "events" and row[2] > 0 for row in moved.rows)
    finally:
        pirsch.stop()


def test_pairs_that_cannot_move_say_why(tmp_path: Path) -> None:
    for source, target, words in (
        ("webtrekk", "umami", "aggregates"),
        ("pirsch", "umami", "not a supported"),
        ("matomo", "matomo", "not a supported"),
    ):
        with pytest.raises(ConfigError, match=words):
            run_migrate(source, target, today_utc(), today_utc(), database=tmp_path / "x.duckdb", workdir=tmp_path)


def test_opentracker_to_matomo_reconciles_exactly(tmp_path: Path) -> None:
    from simulators.matomo import DEMO_SUPERUSER_TOKEN, MatomoSimulator

    first, last = today_utc() - dt.timedelta(days=3), today_utc() - dt.timedelta(days=2)
    with opentracker() as ot, MatomoSimulator() as matomo:
        env = {
            **opentracker_plan(ot).env,
            "DESTINATION__MATOMO__TRACKING_URL": f"{matomo.url}/matomo.php",
            "DESTINATION__MATOMO__TOKEN_AUTH": DEMO_SUPERUSER_TOKEN,
            "DESTINATION__MATOMO__IDSITE": "1",
            "DESTINATION__MATOMO__RECONCILE_DELAY": "0",
        }
        _, _, migration, again = migrate_twice("opentracker", "matomo", env, tmp_path, first, last)
    print(migration.render())
    assert migration.push.tracked > 0 and migration.unexplained == 0, migration.render()
    assert again.push.sent == 0 and again.unexplained == 0


def test_umami_to_matomo_reconciles_exactly(tmp_path: Path) -> None:
    from simulators.matomo import DEMO_SUPERUSER_TOKEN, MatomoSimulator

    day = today_utc() - dt.timedelta(days=2)
    umami = start(version="2")
    try:
        with MatomoSimulator() as matomo:
            env = {
                **umami_plan(umami).env,
                "SOURCES__UMAMI__WEBSITE_IDS": umami.website_ids[0],
                "SOURCES__UMAMI__TIMEZONE": "UTC",
                "DESTINATION__MATOMO__TRACKING_URL": f"{matomo.url}/matomo.php",
                "DESTINATION__MATOMO__TOKEN_AUTH": DEMO_SUPERUSER_TOKEN,
                "DESTINATION__MATOMO__IDSITE": "1",
                "DESTINATION__MATOMO__RECONCILE_DELAY": "0",
            }
            _, _, migration, again = migrate_twice("umami", "matomo", env, tmp_path, day, day)
    finally:
        umami.stop()
    print(migration.render())
    assert migration.unexplained == 0 and again.push.sent == 0, migration.render()
    assert any(row[1] == "events" and row[5] > 0 for row in migration.rows)


def _migrate(env: dict[str, str], database: str, workdir: str, first: dt.date, last: dt.date) -> None:
    with environment(env):
        run_migrate("opentracker", "umami", first, last, database=Path(database), workdir=Path(workdir))


def test_a_migration_killed_mid_push_resumes_without_losing_or_doubling(tmp_path: Path) -> None:
    import collections
    import multiprocessing
    import os
    import signal
    import time

    first, last = today_utc() - dt.timedelta(days=3), today_utc() - dt.timedelta(days=2)
    data = OpentrackerData(sites=(SITE,), sessions_per_day=(300, 400), days=6, max_hours_per_page=1)
    with OpentrackerSimulator(data) as ot:
        umami = start(version="3")
        try:
            website = new_website(umami, SITE)
            env = {**opentracker_plan(ot).env, **umami_env(umami, website), **FAST_RETRY_ENV,
                   "DLT_DATA_DIR": str(tmp_path / "dlt"), "DESTINATION__UMAMI__BATCH_SIZE": "20"}  # fmt: skip
            database = tmp_path / "clickhaul_opentracker.duckdb"
            process = multiprocessing.get_context("fork").Process(
                target=_migrate, args=(env, str(database), str(tmp_path), first, last), daemon=True
            )
            process.start()
            deadline = time.monotonic() + 120
            while umami.count("/api/send", method="POST") < 300:
                assert process.is_alive() and time.monotonic() < deadline
                time.sleep(0.002)
            os.kill(process.pid, signal.SIGKILL)
            process.join(timeout=30)
            sent_before = umami.count("/api/send", method="POST")
            with environment(env):
                migration = run_migrate("opentracker", "umami", first, last, database=database, workdir=tmp_path)
            sessions = umami.traffic.sent_sessions(website)
            counted = collections.Counter((s.id, e.created, e.path) for s in sessions for e in s.events)
        finally:
            umami.stop()
    print(migration.render())
    assert not migration.loaded  # the killed run had loaded Opentracker already
    assert migration.push.recovered_batches > 0 and migration.push.already_acknowledged > 0
    assert max(counted.values()) == 1  # nothing doubled
    assert migration.unexplained == 0, migration.render()  # nothing lost: every expected hit is in Umami
    assert sent_before < umami.count("/api/send", method="POST") or migration.push.sent == 0


# -- Matomo as FROM ----------------------------------------------------------------------------------------------
MATOMO_SITE = "site1.example"


def matomo_with_visits(first: dt.date, last: dt.date, visits_per_day: int) -> tuple[MatomoSimulator, dict[str, int]]:
    """A Matomo simulator whose site 1 holds visits of every kind of action from the day before `first` to the day
    after `last` (the days `migrate matomo` loads around its range)."""
    from tests.support.matomo import seed_visits

    matomo = MatomoSimulator().start()
    kinds = seed_visits(matomo, first - dt.timedelta(days=1), last + dt.timedelta(days=1), visits_per_day)
    return matomo, dict(kinds)


def matomo_env(matomo: MatomoSimulator) -> dict[str, str]:
    from simulators.matomo import demo_plan as matomo_plan

    return {**matomo_plan(matomo).env, "SOURCES__MATOMO__TIMEZONE": "UTC"}


def actions_in_range(database: Path, first: dt.date, last: dt.date) -> dict[str, int]:
    """Matomo's own count of the range's actions by type, from the loaded `matomo.actions`."""
    with duckdb.connect(str(database), read_only=True) as connection:
        rows = connection.execute(
            "select type, count(*) from matomo.actions where cast(timezone('UTC', timestamp) as date) between ? and ? "
            "group by 1",
            [first, last],
        ).fetchall()
    return {str(kind): int(count) for kind, count in rows}


@pytest.mark.parametrize("version", ["2", "3"])
def test_matomo_to_umami_reconciles_exactly_and_a_rerun_sends_nothing(version: str, tmp_path: Path) -> None:
    first, last = today_utc() - dt.timedelta(days=3), today_utc() - dt.timedelta(days=2)
    matomo, seeded = matomo_with_visits(first, last, visits_per_day=25)
    umami = start(version=version)
    try:
        website = new_website(umami, MATOMO_SITE)
        env = {**matomo_env(matomo), **umami_env(umami, website)}
        database, page, migration, again = migrate_twice("matomo", "umami", env, tmp_path, first, last)
        sessions = umami.traffic.sent_sessions(website)
    finally:
        umami.stop()
        matomo.stop()
    print(migration.render())
    assert all(seeded.get(kind) for kind in ("download", "outlink", "search", "goal", "ecommerceOrder"))
    assert migration.loaded and not again.loaded
    assert migration.push.tracked > 0 and migration.unexplained == 0, migration.render()
    assert (again.push.sent, again.push.requests) == (0, 0) and again.unexplained == 0
    moved = actions_in_range(database, first, last)
    total = {metric: sum(row[5] for row in migration.rows if row[1] == metric) for metric in ("pageviews", "events")}
    # every page view moved as one; events, downloads, outlinks and searches as Umami events (the latter three
    # counted as `mapped`); goals and orders are refused with their reason, in the reconciliation and umami_rejected
    assert total["pageviews"] == moved["action"] > 0
    assert total["events"] == moved["event"] + moved["download"] + moved["outlink"] + moved["search"]
    mapped = sum(row[3]["mapped"] for row in migration.rows if row[1] == "events")
    assert mapped == moved["download"] + moved["outlink"] + moved["search"] > 0
    not_moved = moved.get("goal", 0) + moved.get("ecommerceOrder", 0)
    assert not_moved > 0 and sum(migration.reasons.values()) == not_moved
    assert any("goal conversion" in reason for reason in migration.reasons), migration.reasons
    with duckdb.connect(str(database), read_only=True) as connection:
        rejected = connection.execute(
            "select count(*) from umami.umami_rejected where load_id = ?", [migration.push.load_id]
        ).fetchall()[0][0]
        stored = connection.execute(
            "select count(*), sum(abs(unexplained)) from migrate.reconciliation where source = 'matomo'"
        ).fetchall()
    assert rejected == not_moved and stored == [(6, 0)]
    events = [event for session in sessions for event in session.events]
    downloads = [event for event in events if event.name == "download"]
    # a download is an event on the page it happened on, the file in its data
    assert downloads and all(event.path != "/files/guide.pdf" for event in downloads)
    assert all(dict(event.data).get("url") == "https://site1.example/files/guide.pdf" for event in downloads)
    assert {event.name for event in events if event.event_type == 2} >= {"click", "download", "outlink",
                                                                           "site_search"}  # fmt: skip
    assert any(event.referrer_domain for event in events if event.is_view)
    assert "Reconciliation: <b>exact</b>" in page.read_text()


def test_matomo_to_pirsch_reconciles_exactly(tmp_path: Path) -> None:
    first = last = today_utc() - dt.timedelta(days=2)
    matomo, _ = matomo_with_visits(first, last, visits_per_day=20)
    pirsch = PirschSimulator(PirschData(domains=1, days=3), token_limit_per_minute=60).start()
    try:
        domain = pirsch.add_domain(MATOMO_SITE)
        env = {**matomo_env(matomo), **pirsch_env(pirsch, domain)}
        _, _, migration, again = migrate_twice("matomo", "pirsch", env, tmp_path, first, last)
    finally:
        pirsch.stop()
        matomo.stop()
    print(migration.render())
    assert migration.push.tracked > 0 and migration.unexplained == 0, migration.render()
    assert again.push.sent == 0 and again.unexplained == 0
    assert any(row[1] == "events" and row[5] > 0 for row in migration.rows)


def _migrate_matomo(env: dict[str, str], database: str, workdir: str, first: dt.date, last: dt.date) -> None:
    with environment(env):
        run_migrate("matomo", "umami", first, last, database=Path(database), workdir=Path(workdir))


def test_a_matomo_migration_killed_mid_push_resumes_without_losing_or_doubling(tmp_path: Path) -> None:
    import collections
    import multiprocessing
    import os
    import signal
    import time

    first, last = today_utc() - dt.timedelta(days=3), today_utc() - dt.timedelta(days=2)
    matomo, _ = matomo_with_visits(first, last, visits_per_day=150)
    umami = start(version="3")
    try:
        website = new_website(umami, MATOMO_SITE)
        env = {**matomo_env(matomo), **umami_env(umami, website), **FAST_RETRY_ENV,
               "DLT_DATA_DIR": str(tmp_path / "dlt"), "DESTINATION__UMAMI__BATCH_SIZE": "20"}  # fmt: skip
        database = tmp_path / "clickhaul_matomo.duckdb"
        process = multiprocessing.get_context("fork").Process(
            target=_migrate_matomo, args=(env, str(database), str(tmp_path), first, last), daemon=True
        )
        process.start()
        deadline = time.monotonic() + 120
        while umami.count("/api/send", method="POST") < 300:
            assert process.is_alive() and time.monotonic() < deadline
            time.sleep(0.002)
        assert process.pid is not None
        os.kill(process.pid, signal.SIGKILL)
        process.join(timeout=30)
        sent_before = umami.count("/api/send", method="POST")
        with environment(env):
            migration = run_migrate("matomo", "umami", first, last, database=database, workdir=tmp_path)
        sessions = umami.traffic.sent_sessions(website)
        counted = collections.Counter((s.id, e.created, e.path, e.name) for s in sessions for e in s.events)
    finally:
        umami.stop()
        matomo.stop()
    print(migration.render())
    assert not migration.loaded  # the killed run had loaded Matomo already
    assert migration.push.recovered_batches > 0 and migration.push.already_acknowledged > 0
    assert max(counted.values()) == 1  # nothing doubled
    assert migration.unexplained == 0, migration.render()  # nothing lost: every expected hit is in Umami
    assert sent_before < umami.count("/api/send", method="POST") or migration.push.sent == 0


def test_matomo_actions_mapping_moves_what_umami_holds_and_refuses_the_rest() -> None:
    from destinations.matomo.mappings import InvalidHit, mapping
    from destinations.umami.target import payload_of

    visit = {"site_id": 1, "id_visit": 7, "visitor_id": "a1b2c3d4e5f60008", "visit_ip": "203.0.113.9",
             "browser_name": "Microsoft Edge", "browser_version": "120.0", "operating_system_name": "Windows",
             "operating_system_version": "11", "referrer_url": "https://www.google.com/", "language_code": "de-de",
             "country_code": "de", "resolution": "1920x1080"}  # fmt: skip
    at = dt.datetime(2026, 12, 2, 10, 0, tzinfo=dt.UTC)
    to_hits = mapping("matomo_actions").to_hits
    view = to_hits({**visit, "position": 1, "type": "action", "timestamp": at, "url": "https://s.example/a",
                    "page_title": "A"})  # fmt: skip
    assert view[0]["urlref"] == "https://www.google.com/" and view[0]["_id"] == "a1b2c3d4e5f60008"
    assert "Edg/120.0" in view[0]["ua"] and "Windows NT 10.0" in view[0]["ua"]
    download = to_hits({**visit, "position": 2, "type": "download", "timestamp": at, "page_url": "https://s.example/a",
                        "url": "https://s.example/f.pdf"})  # fmt: skip
    assert download[0]["urlref"] is None and download[0]["url"] == "https://s.example/a"
    payload = payload_of(download[0], "w", "", at.timestamp() + 60)["payload"]
    assert payload["name"] == "download" and payload["data"] == {"url": "https://s.example/f.pdf"}
    event = to_hits({**visit, "position": 3, "type": "event", "timestamp": at, "url": "https://s.example/a",
                     "event_category": "cta", "event_action": "click", "event_value": 2.0})  # fmt: skip
    payload = payload_of(event[0], "w", "", at.timestamp() + 60)["payload"]
    assert payload["name"] == "click" and payload["data"] == {"category": "cta", "value": 2.0}
    for kind in ("goal", "ecommerceOrder", "media"):
        with pytest.raises(InvalidHit, match="no equivalent"):
            to_hits({**visit, "position": 4, "type": kind, "timestamp": at})
    unknown = to_hits({**visit, "browser_name": "Unknown", "position": 5, "type": "action", "timestamp": at,
                       "url": "https://s.example/b"})  # fmt: skip
    with pytest.raises(InvalidHit, match="user agent"):
        payload_of(unknown[0], "w", "", at.timestamp() + 60)
