"""The `opentracker_sessions` mapping on a table shaped like the Opentracker source's `opentracker.sessions`, and the
demo step that replays it."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import duckdb
import pyarrow as pa
import pytest

from destinations.matomo import push_table
from destinations.matomo.mappings import campaign, user_agent, visitor_hex
from pipelines.demo import replay_into_matomo
from simulators.matomo import MatomoSimulator
from tests.support.matomo import config_for, database, query

START = dt.datetime(2026, 11, 20, 9, 30, 0, tzinfo=dt.UTC)


def session(index: int, visitor: str, pages: int, seconds: int, **extra: object) -> dict[str, object]:
    start = START + dt.timedelta(hours=index)
    return {
        "day": start.date(),
        "session_id": f"{int(start.timestamp() * 1000)}.{visitor}",
        "use_id": f"1317551937002.{visitor}",
        "visit_id": f"{int(start.timestamp() * 1000)}.{visitor}",
        "session_start": start,
        "session_end": start + dt.timedelta(seconds=seconds),
        "first_session": dt.datetime(2026, 10, 1, tzinfo=dt.UTC),
        "ip_number": f"80.30.157.{index}",
        "browser": "Chrome 15.0.874.120",
        "platform": "Windows 7",
        "resolution": "1600 x 900",
        "session_referrer": "https://www.google.com/search?q=tracker",
        "referrer": "https://www.google.com/search?q=tracker",
        "entry_page": "https://www.example.net/landing?utm_campaign=spring&utm_term=analytics",
        "entry_title": "Landing | Example",
        "current_page": "https://www.example.net/pricing",
        "current_title": "Pricing | Example",
        "pages_viewed": pages,
        "number_of_pages_viewed": pages,
        "number_visits": 3,
        "country_code": "ES",
        "city": "Vitoria",
        "latitude": 42.85,
        "longitude": -2.66,
        **extra,
    }


def write_sessions(path: Path, sessions: list[dict[str, object]], table: str = "opentracker.sessions") -> None:
    data = pa.Table.from_pylist(sessions)  # noqa: F841 - read by DuckDB by name
    with duckdb.connect(str(path)) as connection:
        connection.execute(f"create schema if not exists {table.split('.')[0]}")
        connection.execute(f"create or replace table {table} as select * from data")


def test_sessions_become_matomo_visits(simulator: MatomoSimulator, tmp_path: Path) -> None:
    path = database(tmp_path)
    write_sessions(
        path,
        [
            session(0, "715589607", pages=5, seconds=400),
            session(1, "715589607", pages=1, seconds=0, entry_page="https://www.example.net/"),
            session(2, "180515048", pages=1200, seconds=7200),  # a bot-like session: capped
        ],
    )
    summary = push_table(
        path, "opentracker.sessions", config=config_for(simulator), mapping_name="opentracker_sessions"
    )
    stored = sorted(simulator.stored(), key=lambda hit: hit.sequence)
    assert summary.rows == 3 and summary.sent == len(stored) == 5 + 1 + 500 and summary.rejected == 0

    entries = [hit.params for hit in stored if hit.params.get("new_visit") == "1"]
    assert len(entries) == 3
    first = next(p for p in entries if p["cdt"] == "2026-11-20 09:30:00")
    assert first["url"] == "https://www.example.net/landing?utm_campaign=spring&utm_term=analytics"
    assert first["action_name"] == "Landing | Example"
    assert first["_id"] == visitor_hex("1317551937002.715589607")
    assert first["cip"] == "80.30.157.0" and first["res"] == "1600x900"
    assert "Chrome/15.0.874.120" in first["ua"] and "Windows NT 6.1" in first["ua"]
    assert first["urlref"] == "https://www.google.com/search?q=tracker"
    assert (first["_rcn"], first["_rck"]) == ("spring", "analytics")
    assert (first["_idvc"], first["country"], first["city"]) == ("3", "es", "Vitoria")
    assert first["_idts"] == str(int(dt.datetime(2026, 10, 1, tzinfo=dt.UTC).timestamp()))

    visit = [hit.params for hit in stored if hit.params["_id"] == first["_id"] and hit.params["cdt"] < "2026-11-20 10"]
    assert [p["cdt"] for p in visit] == [
        "2026-11-20 09:30:00", "2026-11-20 09:31:40", "2026-11-20 09:33:20", "2026-11-20 09:35:00",
        "2026-11-20 09:36:40",
    ]  # fmt: skip
    assert all(p["url"] == "https://www.example.net/pricing" for p in visit[1:])
    assert all("new_visit" not in p and "_rcn" not in p for p in visit[1:])
    # The same visitor's second session is a second visit with the same _id.
    assert sum(1 for p in entries if p["_id"] == first["_id"]) == 2

    again = push_table(path, "opentracker.sessions", config=config_for(simulator), mapping_name="opentracker_sessions")
    assert again.sent == 0 and again.already_acknowledged == 506


def test_api_column_names_and_sessions_without_a_start(simulator: MatomoSimulator, tmp_path: Path) -> None:
    path = database(tmp_path)
    rows = [session(0, "1", pages=2, seconds=60), session(1, "2", pages=1, seconds=0)]
    for row in rows:  # the API's own names for the time fields (epoch ms), as a raw export would have them
        row["session_start_unix_timestamp"] = int(row.pop("session_start").timestamp() * 1000)  # type: ignore[attr-defined]
        row["session_end_unix_timestamp"] = int(row.pop("session_end").timestamp() * 1000)  # type: ignore[attr-defined]
    rows[1]["session_start_unix_timestamp"] = None
    write_sessions(path, rows, "raw.sessions")
    summary = push_table(path, "raw.sessions", config=config_for(simulator), mapping_name="opentracker_sessions")
    assert summary.sent == 2 and summary.rejected_client == 1
    assert [hit.params["cdt"] for hit in simulator.stored()] == ["2026-11-20 09:30:00", "2026-11-20 09:31:00"]
    assert "no session_start" in query(path, "select reason from matomo.matomo_rejected")[0][0]


@pytest.mark.parametrize(
    ("browser", "platform", "expected"),
    [
        ("Firefox 8.0", "Windows XP", ("Firefox/8.0", "Windows NT 5.1")),
        ("Safari 5.1.1", "Intel Mac OS X 10.6.8", ("Version/5.1.1 Safari", "Mac OS X 10_6_8")),
        ("IE 6.0", "Windows XP", ("MSIE 6.0", "Windows NT 5.1")),
    ],
)
def test_user_agent_from_browser_and_platform(browser: str, platform: str, expected: tuple[str, str]) -> None:
    agent = user_agent(browser, platform)
    assert agent is not None and all(part in agent for part in expected)


def test_campaign_from_entry_url() -> None:
    assert campaign("https://x.example/?pk_campaign=fall&pk_kwd=shoes") == ("fall", "shoes")
    assert campaign("https://x.example/?mtm_campaign=a&utm_campaign=b") == ("a", None)
    assert campaign("https://x.example/plain") == (None, None)


def test_the_demo_replays_opentracker_sessions(tmp_path: Path) -> None:
    path = database(tmp_path)
    lines: list[str] = []
    replay_into_matomo(path, lines.append)
    assert "nothing to replay" in lines[-1]

    write_sessions(path, [session(i, str(i % 3), pages=2, seconds=90) for i in range(6)])
    lines.clear()
    replay_into_matomo(path, lines.append)
    text = "\n".join(lines)
    assert "sent 12, tracked 12, rejected 0" in text
    assert "stored 12 page views in 6 visits of 3 visitors" in text
