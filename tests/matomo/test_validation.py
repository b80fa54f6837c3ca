"""Invalid rows never reach Matomo: they land in matomo.matomo_rejected with their reason; hits Matomo itself
reports invalid are recorded the same way; cdt always goes out as UTC `YYYY-MM-DD HH:MM:SS`."""

from __future__ import annotations

import datetime as dt
import json
import re
from pathlib import Path

import duckdb

from destinations.matomo import push_table
from simulators.matomo import DEMO_WRITE_TOKEN, MatomoSimulator
from sources.common.clock import utc_now
from tests.support.matomo import config_for, create_table, database, query


def insert_rows(path: Path, table: str, columns: dict[str, str], rows: list[tuple[object, ...]]) -> None:
    schema = table.split(".")[0]
    with duckdb.connect(str(path)) as connection:
        connection.execute(f"create schema if not exists {schema}")
        connection.execute(f"create or replace table {table} ({', '.join(f'{c} {t}' for c, t in columns.items())})")
        connection.executemany(f"insert into {table} values ({', '.join('?' for _ in columns)})", rows)


COLUMNS = {
    "row_name": "varchar",
    "url": "varchar",
    "_id": "varchar",
    "cdt": "varchar",
    "e_c": "varchar",
    "e_a": "varchar",
    "e_v": "varchar",
    "revenue": "varchar",
    "idgoal": "varchar",
    "ec_items": "varchar",
}


def test_invalid_rows_land_in_matomo_rejected_with_their_reason_and_are_never_sent(
    simulator: MatomoSimulator, tmp_path: Path
) -> None:
    path = database(tmp_path)
    now = utc_now()
    recent = (now - dt.timedelta(hours=2)).strftime("%Y-%m-%d %H:%M:%S")
    future = (now + dt.timedelta(hours=2)).strftime("%Y-%m-%d %H:%M:%S")
    ancient = (now - dt.timedelta(days=365 * 21)).strftime("%Y-%m-%d %H:%M:%S")
    good = json.dumps([["SKU1", "Shirt", "Clothes", 19.9, 2]])
    rows: list[tuple[object, ...]] = [
        ("ok-page", "https://a.example/1", "0123456789abcdef", recent, None, None, None, None, None, None),
        ("ok-event", "https://a.example/2", "0123456789abcdef", recent, "Video", "Play", "3.5", None, None, None),
        ("ok-order", "https://a.example/3", "0123456789abcdef", recent, None, None, None, "39.8", "0", good),
        ("no-url", None, "0123456789abcdef", recent, None, None, None, None, None, None),
        ("bad-id", "https://a.example/5", "not-hex-at-all!!", recent, None, None, None, None, None, None),
        ("short-id", "https://a.example/6", "abc123", recent, None, None, None, None, None, None),
        ("text-value", "https://a.example/7", None, recent, "Video", "Play", "lots", None, None, None),
        ("text-revenue", "https://a.example/8", None, recent, None, None, None, "ten", "1", None),
        ("future", "https://a.example/9", None, future, None, None, None, None, None, None),
        ("ancient", "https://a.example/10", None, ancient, None, None, None, None, None, None),
        ("bad-cdt", "https://a.example/11", None, "yesterday-ish", None, None, None, None, None, None),
        ("bad-items", "https://a.example/12", None, recent, None, None, None, "5", "0", "[oops"),
        ("items-shape", "https://a.example/13", None, recent, None, None, None, "5", "0", '{"sku": 1}'),
        ("half-event", "https://a.example/14", None, recent, "Video", None, None, None, None, None),
    ]
    insert_rows(path, "events.mixed", COLUMNS, rows)
    summary = push_table(path, "events.mixed", config=config_for(simulator))

    sent = {hit.params["url"] for hit in simulator.stored()}
    assert sent == {"https://a.example/1", "https://a.example/2", "https://a.example/3"}
    assert all(b"a.example/5" not in request.body for request in simulator.requests)
    assert (summary.sent, summary.rejected_client, summary.rejected_server) == (3, 11, 0)
    reasons = dict(
        query(
            path,
            f"select row ->> 'row_name', reason from matomo.matomo_rejected where load_id = '{summary.load_id}' "
            "and origin = 'client'",
        )
    )
    expected = {
        "no-url": "url is missing",
        "bad-id": "_id 'not-hex-at-all!!' must be exactly 16 hexadecimal",
        "short-id": "_id 'abc123' must be exactly 16",
        "text-value": "e_v 'lots' is not numeric",
        "text-revenue": "revenue 'ten' is not numeric",
        "future": "is in the future",
        "ancient": "older than 20 years",
        "bad-cdt": "is not a timestamp",
        "bad-items": "ec_items is not valid JSON",
        "items-shape": "ec_items must be a JSON array",
        "half-event": "needs both e_c",
    }
    assert set(reasons) == set(expected)
    for name, reason in expected.items():
        assert reason in reasons[name], (name, reasons[name])
    stored = {hit.params["url"]: hit.params for hit in simulator.stored()}
    assert json.loads(stored["https://a.example/3"]["ec_items"]) == [["SKU1", "Shirt", "Clothes", 19.9, 2]]
    assert stored["https://a.example/2"]["e_v"] == "3.5"


def test_without_token_back_dated_hits_and_ip_overrides_are_rejected_before_sending(
    simulator: MatomoSimulator, tmp_path: Path
) -> None:
    path = database(tmp_path)
    now = utc_now()
    create_table(
        path,
        "events.tokenless",
        f"""select * from (values
            ('https://a.example/recent', timestamptz '{(now - dt.timedelta(hours=3)).isoformat()}', null),
            ('https://a.example/old', timestamptz '{(now - dt.timedelta(days=2)).isoformat()}', null),
            ('https://a.example/ip', timestamptz '{(now - dt.timedelta(hours=1)).isoformat()}', '10.1.2.3')
        ) t(url, timestamp, ip)""",
    )
    summary = push_table(path, "events.tokenless", config=config_for(simulator, token=None))
    assert [hit.params["url"] for hit in simulator.stored()] == ["https://a.example/recent"]
    assert summary.rejected_client == 2
    reasons = sorted(row[0] for row in query(path, "select reason from matomo.matomo_rejected"))
    assert "older than 24 hours" in reasons[0] and "token_auth" in reasons[0]
    assert "cip needs a token_auth" in reasons[1]
    assert all("token_auth" not in request.body.decode() for request in simulator.requests)


def test_hits_matomo_reports_invalid_are_recorded_exactly_with_a_super_user_token(
    simulator: MatomoSimulator, tmp_path: Path
) -> None:
    path = database(tmp_path)
    # Site 99 does not exist on the server: only Matomo can know, so these pass the client's checks.
    create_table(
        path,
        "events.sites",
        "select case when i % 10 = 0 then 99 else 1 end as idsite, 'https://a.example/' || i as url, i as n "
        "from range(100) t(i)",
    )
    summary = push_table(path, "events.sites", config=config_for(simulator, batch_size=30, workers=2))
    assert (summary.sent, summary.tracked, summary.rejected_server) == (100, 90, 10)
    rejected = query(path, "select url_of, reason, hit_id is not null from (select row ->> 'url' as url_of, reason, "
                     "hit_id from matomo.matomo_rejected where origin = 'server')")  # fmt: skip
    assert sorted(row[0] for row in rejected) == sorted(f"https://a.example/{i}" for i in range(0, 100, 10))
    assert all(row[2] and "invalid" in row[1] for row in rejected)


def test_without_super_user_matomo_says_how_many_not_which_and_the_batch_is_recorded(
    simulator: MatomoSimulator, tmp_path: Path
) -> None:
    path = database(tmp_path)
    create_table(
        path,
        "events.sites",
        "select case when i = 3 then 99 else 1 end as idsite, 'https://a.example/' || i as url from range(10) t(i)",
    )
    summary = push_table(path, "events.sites", config=config_for(simulator, token=DEMO_WRITE_TOKEN, workers=1))
    assert (summary.tracked, summary.rejected_server) == (9, 1)
    [(reason, rows)] = query(path, "select reason, json_array_length(row) from matomo.matomo_rejected")
    assert "1 of 10 hits" in reason and "super-user" in reason and rows == 10


def test_cdt_is_always_utc_in_matomo_format(simulator: MatomoSimulator, tmp_path: Path) -> None:
    path = database(tmp_path)
    moment = (utc_now() - dt.timedelta(hours=5)).replace(microsecond=0)
    berlin = moment.astimezone(dt.timezone(dt.timedelta(hours=2)))
    expected = moment.strftime("%Y-%m-%d %H:%M:%S")
    inputs = {
        "iso-offset": berlin.isoformat(),
        "iso-z": moment.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "naive-utc": moment.strftime("%Y-%m-%d %H:%M:%S"),
        "unix-seconds": str(int(moment.timestamp())),
        "unix-ms": str(int(moment.timestamp() * 1000)),
    }
    insert_rows(
        path,
        "events.times",
        {"url": "varchar", "timestamp": "varchar"},
        [(f"https://a.example/{name}", value) for name, value in inputs.items()],
    )
    with duckdb.connect(str(path)) as connection:  # typed columns too, written in a non-UTC session
        connection.execute("set TimeZone = 'America/New_York'")
        connection.execute("create table events.typed (url varchar, cdt timestamptz)")
        connection.execute("insert into events.typed values ('https://a.example/timestamptz', ?)", [berlin])
        connection.execute("create table events.naive (url varchar, cdt timestamp)")
        connection.execute(
            "insert into events.naive values ('https://a.example/naive-timestamp', ?)", [moment.replace(tzinfo=None)]
        )
    for table in ("events.times", "events.typed", "events.naive"):  # three tables into one site and hour: force
        push_table(path, table, config=config_for(simulator), force=True)
    stored = {hit.params["url"].rsplit("/", 1)[1]: hit.params["cdt"] for hit in simulator.stored()}
    assert set(stored) == {*inputs, "timestamptz", "naive-timestamp"}
    for name, cdt in stored.items():
        assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d", cdt), name
        assert cdt == expected, name
    assert all(hit.cdt == expected for hit in simulator.stored())  # and Matomo recorded that moment
