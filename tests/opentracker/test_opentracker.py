"""Opentracker against its simulator over HTTP: completeness, types, overlap, paging guard, errors, tickets,
faults, incremental updates, filters, sessions by user, bad input, secrets, CLI."""

from __future__ import annotations

import datetime as dt
import logging
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import duckdb
import orjson
import pyarrow as pa
import pytest

from simulators.harness import Faults
from simulators.opentracker import (
    DEMO_LOGIN,
    DEMO_PASSWORD,
    DEMO_SITES,
    OTHER_SITES,
    OpentrackerData,
    OpentrackerSimulator,
    demo_plan,
)
from sources.common.clock import TODAY_ENV, FakeClock, today_utc
from sources.common.errors import AuthError, ConfigError, VendorError
from sources.common.windows import DateWindow
from sources.opentracker.client import (
    OpentrackerClient,
    OpentrackerError,
    SiteRefused,
    TicketRefused,
    parse_answer,
)
from sources.opentracker.table import page_table
from tests.support import ROOT, Loader, files_containing, run_cli

SITES = ("www.example.com", "shop.example.com")
TZ = "Europe/Amsterdam"
LAST = dt.date(2026, 10, 31)  # inside the simulated data, in the past: every session has ended
FIRST = LAST - dt.timedelta(days=6)


def small_data(**overrides: Any) -> OpentrackerData:
    values: dict[str, Any] = dict(
        days=20, last_day=LAST + dt.timedelta(days=3), sessions_per_day=(150, 300), users_per_site=400, cut_share=0.5
    )
    values.update(overrides)
    return OpentrackerData(**values)


@pytest.fixture
def simulator() -> Iterator[OpentrackerSimulator]:
    server = OpentrackerSimulator(small_data())
    with server:
        yield server


def env_for(simulator: OpentrackerSimulator, **extra: str) -> dict[str, str]:
    return {
        "SOURCES__OPENTRACKER__BASE_URL": simulator.base_url,
        "SOURCES__OPENTRACKER__LOGIN": DEMO_LOGIN,
        "SOURCES__OPENTRACKER__PASSWORD": DEMO_PASSWORD,
        "SOURCES__OPENTRACKER__SITES": ",".join(SITES),
        "SOURCES__OPENTRACKER__TIMEZONE": TZ,
        "SOURCES__OPENTRACKER__PAGE_LIMIT": "60",
        "SOURCES__OPENTRACKER__WORKERS": "3",
        **extra,
    }


def loader(simulator: OpentrackerSimulator, tmp_path: Path, name: str = "run", **extra: str) -> Loader:
    return Loader("opentracker", tmp_path / name, env_for(simulator, **extra))


def truth(simulator: OpentrackerSimulator, first: dt.date = FIRST, last: dt.date = LAST, **params: str) -> dict:
    found: dict[str, dict[str, str]] = {}
    for site in SITES:
        found.update(simulator.truth(site, first, last, TZ, **params))
    return found


def ms(value: dt.datetime | None) -> str:
    return "" if value is None else str(round(value.timestamp() * 1000))


TABLE_COLUMNS = (
    "session_id, day, site, session_start, session_end, last_event, first_session, session_referrer_time, "
    "pages_viewed, number_visits, total_pages_viewed, inet_aton, latitude, longitude, email, country_code, "
    "current_page, duration_label, user_status"
)


def table(run: Loader) -> list[tuple[Any, ...]]:
    return run.query(f"select {TABLE_COLUMNS} from opentracker.sessions order by session_id")


# -- completeness and types --------------------------------------------------------------------------------
def test_seven_days_load_every_session_once_with_types(simulator: OpentrackerSimulator, tmp_path: Path) -> None:
    run = loader(simulator, tmp_path)
    summary = run.run(FIRST, LAST)
    expected = truth(simulator)
    rows = table(run)
    ids = [row[0] for row in rows]
    assert len(ids) == len(set(ids)) == len(expected) > 2000
    assert set(ids) == set(expected)
    # The walk really met overlapping, oversized, short and empty-but-continuing pages.
    served = sum(count for count, _, _ in simulator.served)
    assert served > len(expected), "no page overlapped: the de-duplication was not exercised"
    assert any(count > limit for count, limit, _ in simulator.served)
    assert any(count < limit and token for count, limit, token in simulator.served)
    # the summary says what the table holds, and what was served, overlaps included
    assert summary.rows["sessions"] == len(expected) == run.count("sessions")
    assert summary.extracted["sessions"] == served > len(expected)
    assert f"after removing {served - len(expected):,} served twice" in summary.render()

    types = dict(run.query("select column_name, data_type from information_schema.columns where table_name='sessions'"))
    assert types["session_start"].startswith("TIMESTAMP WITH TIME ZONE")
    assert types["pages_viewed"] == types["inet_aton"] == "BIGINT"
    assert types["latitude"] == "DOUBLE" and types["day"] == "DATE" and types["email"] == "VARCHAR"
    for (
        sid,
        day,
        site,
        start,
        end,
        last_event,
        first,
        referred,
        pages,
        visits,
        total,
        inet,
        lat,
        lon,
        email,
        *rest,
    ) in rows:
        source = expected[sid]
        assert site == source["site"]
        assert ms(start) == source["session_start_unix_timestamp"]
        assert ms(end) == source["session_end_unix_timestamp"]
        assert ms(last_event) == source["eventUnixTimestamp"]
        assert ms(first) == source["first_session_unix_timestamp"]
        assert ms(referred) == source["session_referrer_unix_timestamp"]
        assert (pages, visits, total, inet) == tuple(
            int(source[name]) for name in ("pages_viewed", "number_visits", "total_pages_viewed", "inet_aton")
        )
        assert (lat, lon) == (float(source["latitude"]), float(source["longitude"]))
        assert email is None and source["email"] == ""  # "" becomes null
        assert rest == [source["country_code"], source["currentPage"], source["duration"], source["user_status"]]
        assert day == start.astimezone(ZoneInfo(TZ)).date()
    assert all(FIRST <= row[1] <= LAST for row in rows)


def test_faults_at_ten_percent_give_the_same_table_as_a_clean_run(tmp_path: Path) -> None:
    clean, faulty = OpentrackerSimulator(small_data()), OpentrackerSimulator(small_data(), Faults.chaos(0.1, seed=3))
    with clean:
        clean_run = loader(clean, tmp_path, "clean", SOURCES__OPENTRACKER__PAGE_LIMIT="200")
        clean_run.run(FIRST, LAST)
    with faulty:
        faulty_run = loader(faulty, tmp_path, "faulty", SOURCES__OPENTRACKER__PAGE_LIMIT="200")
        summary = faulty_run.run(FIRST, LAST)
        assert sum(1 for request in faulty.requests if request.fault) >= 3
    assert summary.retries >= 3
    everything = "select * exclude (_dlt_load_id) from opentracker.sessions order by session_id"
    assert faulty_run.query(everything) == clean_run.query(everything)


# -- paging guard and errors -------------------------------------------------------------------------------
def test_a_nextToken_that_does_not_advance_stops_with_a_clear_error(
    simulator: OpentrackerSimulator, tmp_path: Path
) -> None:
    simulator.stuck_token = True
    with pytest.raises(OpentrackerError, match="nextToken does not advance"):
        loader(simulator, tmp_path, SOURCES__OPENTRACKER__WORKERS="1").run(FIRST, FIRST)
    assert simulator.count(r"c_view_session") <= 3 * len(SITES)  # site checks, then one stuck walk per worker


def test_error_bodies_and_false_become_typed_exceptions_with_the_message(simulator: OpentrackerSimulator) -> None:
    window = DateWindow(FIRST, FIRST, TZ)
    client = OpentrackerClient(simulator.base_url, login=DEMO_LOGIN, password=DEMO_PASSWORD, timezone=TZ)
    with pytest.raises(OpentrackerError, match="Unknown column: no_such_column") as error:
        list(client.sessions(SITES[0], window, {"showColumns": "no_such_column"}))
    assert error.value.name == "java.lang.IllegalArgumentException"
    with pytest.raises(SiteRefused, match=rf"may not read site '{OTHER_SITES[0]}'.*Login/ site combination"):
        list(client.sessions(OTHER_SITES[0], window))
    stale = OpentrackerClient(simulator.base_url, ticket_id="0e2d9c1e-no-such-ticket", timezone=TZ)
    with pytest.raises(TicketRefused, match=r"refused sources\.opentracker\.ticket_id"):
        list(stale.sessions(SITES[0], window))
    wrong = OpentrackerClient(simulator.base_url, login=DEMO_LOGIN, password="not-the-password", timezone=TZ)
    with pytest.raises(AuthError, match="refused login/password"):
        wrong.probe(SITES[0], window)
    direct = OpentrackerClient(
        simulator.base_url, login=DEMO_LOGIN, password="not-the-password", use_ticket=False, timezone=TZ
    )
    with pytest.raises(SiteRefused, match="and the password"):
        direct.probe(SITES[0], window)
    assert simulator.refused_tickets == 1


def test_a_site_of_another_account_fails_the_run_naming_the_site(
    simulator: OpentrackerSimulator, tmp_path: Path
) -> None:
    run = loader(simulator, tmp_path, SOURCES__OPENTRACKER__SITES=f"{SITES[0]},{OTHER_SITES[0]}")
    with pytest.raises(AuthError, match=OTHER_SITES[0].replace(".", r"\.")):
        run.run(FIRST, FIRST)
    assert not run.database.exists()  # found by the site check before a pipeline or database exists
    assert simulator.count("c_view_session") == 2  # one small request per site, no data walked


# -- tickets -----------------------------------------------------------------------------------------------
def test_a_ticket_expiring_mid_run_is_renewed(simulator: OpentrackerSimulator, tmp_path: Path) -> None:
    simulator.expire_tickets_every = 7
    run = loader(simulator, tmp_path, SOURCES__OPENTRACKER__WORKERS="1")  # one at a time: exact counts
    run.run(FIRST, FIRST + dt.timedelta(days=2))
    assert simulator.refused_tickets >= 2  # the server did end tickets under the run ...
    assert simulator.tickets.issued == simulator.refused_tickets + 1  # ... and each was renewed once
    assert run.count("sessions") == len(truth(simulator, FIRST, FIRST + dt.timedelta(days=2)))


def test_a_ticket_is_renewed_before_it_expires() -> None:
    clock = FakeClock(start=2_000_000_000.0)
    simulator = OpentrackerSimulator(small_data(), clock=clock.time)
    with simulator:
        client = OpentrackerClient(
            simulator.base_url, login=DEMO_LOGIN, password=DEMO_PASSWORD, ticket_seconds=120, clock=clock, timezone=TZ
        )
        window = DateWindow(FIRST, FIRST, TZ)
        client.probe(SITES[0], window)
        clock.advance(60)
        client.probe(SITES[0], window)
        assert simulator.tickets.issued == 1
        clock.advance(40)  # 20 s left: inside the renewal margin
        client.probe(SITES[0], window)
        assert simulator.tickets.issued == 2
        assert simulator.refused_tickets == 0  # renewed ahead of time, never refused


# -- incremental, filters, users ---------------------------------------------------------------------------
@pytest.mark.calendar
def test_incremental_runs_update_sessions_still_open_and_add_new_ones(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    today = today_utc()
    data = small_data(last_day=today, days=6)
    simulator = OpentrackerSimulator(data)
    # The first run looks at the account just after a page view of a session that has more to come (yesterday,
    # whatever that day's traffic): the session is open then, and has grown by the second run.
    growing = next(s for s in simulator.traffic.utc_day(SITES[0], today - dt.timedelta(days=1)) if len(s.events) >= 3)
    noon = growing.events[1] / 1000 + 1
    # clickhaul's clock and the simulator's agree on "now": each run happens at the simulator's moment (with the
    # real clock, a run at 23:40 UTC is already two days after yesterday's 00:05 in Amsterdam)
    data.now = noon
    monkeypatch.setenv(TODAY_ENV, dt.datetime.fromtimestamp(noon, dt.UTC).isoformat())
    with simulator:
        start = today - dt.timedelta(days=3)
        run = loader(simulator, tmp_path, SOURCES__OPENTRACKER__START_DATE=start.isoformat())
        run.run()
        before = dict(run.query("select session_id, session_end from opentracker.sessions where user_status='online'"))
        assert before, "no session was still open at the first run"
        data.now = noon + 6 * 3600
        monkeypatch.setenv(TODAY_ENV, dt.datetime.fromtimestamp(data.now, dt.UTC).isoformat())
        run.run()
        expected = truth(simulator, start, today)
        rows = run.query("select session_id, session_end, user_status from opentracker.sessions")
        assert len(rows) == len({row[0] for row in rows}) == len(expected)
        ends = {sid: end for sid, end, _ in rows}
        grown = [sid for sid, end in before.items() if ends[sid] > end]
        assert f"{growing.start}.{growing.uid}" in grown
        for sid, end, status in rows:
            assert ms(end) == expected[sid]["session_end_unix_timestamp"] and status == expected[sid]["user_status"]


def test_filters_are_sent_under_their_api_names(simulator: OpentrackerSimulator, tmp_path: Path) -> None:
    filters = '{"include_country_code": ["NL", "de"], "max_duration": 600, "use_or": true}'
    run = loader(simulator, tmp_path, SOURCES__OPENTRACKER__FILTERS=filters)
    run.run(FIRST, FIRST + dt.timedelta(days=1))
    expected = truth(simulator, FIRST, FIRST + dt.timedelta(days=1), includeCountryCode="NL,de", maxDuration="600")
    ids = {row[0] for row in run.query("select session_id from opentracker.sessions")}
    assert ids == set(expected) and ids
    assert {row[0] for row in run.query("select distinct country_code from opentracker.sessions")} == {"NL", "DE"}
    assert run.count("sessions", "filtered_company is null") == 0  # the column the API adds with these filters
    bodies = [r.body.decode() for r in simulator.requests if "c_view_session" in r.path and b"limit=60" in r.body]
    assert bodies and all("includeCountryCode=NL%2Cde&maxDuration=600&useOr=true" in body for body in bodies)


def test_sessions_by_user(simulator: OpentrackerSimulator, tmp_path: Path) -> None:
    now = simulator.data.now_ms()
    keys = sorted({f"{s.first_session}.{s.uid}" for s in simulator.traffic.utc_day(SITES[0], FIRST)})[:2]
    expected = {
        f"{s.start}.{s.uid}"
        for site in SITES
        for key in keys
        for s in simulator.user_sessions(site, now, machine_idx=key)
    }
    run = loader(simulator, tmp_path, SOURCES__OPENTRACKER__USER_MACHINE_IDXS=",".join(keys))
    run.run(FIRST, FIRST, resources="sessions_by_user")
    assert {row[0] for row in run.query("select session_id from opentracker.sessions_by_user")} == expected
    assert "sessions" not in run.tables()


# -- bad input ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ({"SOURCES__OPENTRACKER__SITES": " , "}, "sources.opentracker.sites is empty"),
        ({"SOURCES__OPENTRACKER__PAGE_LIMIT": "5000"}, "page_limit must be between 1 and 1000"),
        ({"SOURCES__OPENTRACKER__FILTERS": '{"include_country": "NL"}'}, "unknown sources.opentracker.filters key"),
        ({"SOURCES__OPENTRACKER__FILTERS": '{"show_columns": ["nope"]}'}, "show_columns names unknown column"),
        ({"SOURCES__OPENTRACKER__WINDOW": "hour"}, "window 'hour' is invalid: use one of"),
        ({"SOURCES__OPENTRACKER__TIMEZONE": "Mars/Base"}, "not an IANA timezone"),
        ({"SOURCES__OPENTRACKER__PASSWORD": ""}, "opentracker needs credentials"),
        ({"SOURCES__OPENTRACKER__BASE_URL": "http://api.opentracker.net/api/views/"}, "plain HTTP"),
    ],
)
def test_bad_configuration_fails_before_any_request(
    simulator: OpentrackerSimulator, tmp_path: Path, extra: dict[str, str], message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        loader(simulator, tmp_path, **extra).run(FIRST, FIRST)
    assert simulator.count() == 0


# -- secrets -----------------------------------------------------------------------------------------------
def test_no_password_in_logs_urls_or_database(
    simulator: OpentrackerSimulator, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    simulator.expire_tickets_every = 5  # tickets travel too, and get renewed
    loader(simulator, tmp_path, "tickets", SOURCES__OPENTRACKER__WORKERS="1").run(FIRST, FIRST)
    direct = loader(simulator, tmp_path, "direct", SOURCES__OPENTRACKER__USE_TICKET="false")
    direct.run(FIRST, FIRST)
    assert simulator.count("c_view_session", method="POST") == simulator.count("c_view_session") > 0
    bodies = b"".join(request.body for request in simulator.requests)
    assert DEMO_PASSWORD.encode() in bodies  # it was sent, in POST bodies only
    tickets = [
        part.split("=", 1)[1]
        for request in simulator.requests
        for part in request.body.decode().split("&")
        if part.startswith("ticketId=")
    ]
    assert tickets
    for request in simulator.requests:
        assert not request.query, f"credentials or parameters in the URL: {request.path}?{request.query}"
    assert DEMO_PASSWORD not in caplog.text and not any(ticket in caplog.text for ticket in tickets)
    assert files_containing(tmp_path, [DEMO_PASSWORD, *set(tickets)]) == []


@pytest.mark.calendar
def test_cli_check_run_and_demo_plan(tmp_path: Path) -> None:
    simulator = OpentrackerSimulator(OpentrackerData(days=5))
    with simulator:
        plan = demo_plan(simulator)
        env = {**plan.env, "DLT_DATA_DIR": str(tmp_path / "dlt"), "RUNTIME__LOG_LEVEL": "WARNING"}
        check = run_cli("check", "opentracker", env=env, cwd=tmp_path)
        assert check.returncode == 0, check.stderr
        assert "ok: opentracker" in check.stdout and "2 site(s)" in check.stdout
        end = plan.start  # one day of the demo: thousands of sessions per site
        result = run_cli(
            "-v", "run", "opentracker", "--start", str(plan.start), "--end", str(end), env=env, cwd=tmp_path
        )
        assert result.returncode == 0, result.stderr
        assert "sessions" in result.stdout
        loaded = int(result.stdout.split("sessions")[1].split()[0].replace(",", ""))
        expected = sum(len(simulator.truth(site, plan.start, end, "Europe/Amsterdam")) for site in simulator.data.sites)
        # each site has at least sessions_per_day[0] sessions per UTC day; a local day (23 h on a DST day) most of them
        assert loaded == expected > len(simulator.data.sites) * simulator.data.sessions_per_day[0] * 0.75
        assert DEMO_PASSWORD not in result.stdout + result.stderr
        bad = run_cli("check", "opentracker", env={**env, "SOURCES__OPENTRACKER__SITES": OTHER_SITES[0]}, cwd=tmp_path)
        assert bad.returncode == 1 and OTHER_SITES[0] in bad.stderr and "Traceback" not in bad.stderr
    assert files_containing(tmp_path, [DEMO_PASSWORD]) == []


@pytest.mark.parametrize("past_window", [True, False])
def test_the_walk_ends_whether_the_last_token_is_empty_or_points_before_the_window(past_window: bool) -> None:
    simulator = OpentrackerSimulator(small_data(token_past_window=past_window))
    with simulator:
        client = OpentrackerClient(simulator.base_url, login=DEMO_LOGIN, password=DEMO_PASSWORD, timezone=TZ)
        pages = list(client.sessions(SITES[0], DateWindow(FIRST, FIRST, TZ)))
        assert bool(pages[-1].next_token) is past_window
        ids = {row[pages[0].fields.index("session_id")] for page in pages for row in page.python_rows()}
        assert ids == set(simulator.truth(SITES[0], FIRST, FIRST, TZ))
        assert simulator.count("c_view_session") == len(pages)


def test_cli_simulate_serves_the_simulator_for_users() -> None:
    process = subprocess.Popen(
        [sys.executable, "-m", "pipelines", "simulate", "opentracker"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        cwd=str(ROOT),
    )
    try:
        assert process.stdout is not None
        lines = [process.stdout.readline() for _ in range(3)]
        url = lines[0].rsplit(" ", 1)[-1].strip()
        assert lines[0].startswith("opentracker simulator listening on http://127.0.0.1:")
        window = DateWindow(today_utc() - dt.timedelta(days=1), today_utc() - dt.timedelta(days=1), "UTC")
        client = OpentrackerClient(f"{url}/api/views/", login=DEMO_LOGIN, password=DEMO_PASSWORD)
        assert client.probe(DEMO_SITES[0], window) >= 1  # `limit` is a minimum: whole hours come back
    finally:
        process.terminate()
        process.wait(10)


def test_odd_cells_and_new_fields_are_typed_without_losing_the_page() -> None:
    fields = ["session_id", "session_start_unix_timestamp", "pages_viewed", "latitude", "visitorSegment"]
    rows = [
        ["1.1", "1761955200000", "1,169", "52.35", "loyal"],
        ["2.2", "", "n/a", "", ""],
    ]
    table = page_table(fields, rows, TZ, FIRST)
    assert table.column("pages_viewed").to_pylist() == [1169, None]  # "1,169" parsed, "n/a" does not fit:
    assert table.column("pages_viewed__v_text").to_pylist() == [None, "n/a"]  # kept verbatim, as for every vendor
    assert table.column("latitude").to_pylist() == [52.35, None]
    assert table.column("visitor_segment").to_pylist() == ["loyal", None]  # a field the API added, kept as text
    assert table.column("day").to_pylist() == [dt.date(2025, 11, 1), FIRST]  # local day; window day without start
    assert table.column("country_code").null_count == 2  # columns the page did not carry are null
    with pytest.raises(VendorError, match="row 1 has 4 cells for 5 fields"):
        page_table(fields, [rows[0], rows[1][:4]], TZ, FIRST)


def test_a_short_row_read_by_arrow_is_refused_as_a_parsed_one_is() -> None:
    fields = ["session_id", "session_start_unix_timestamp", "pages_viewed"]
    answer = parse_answer(orjson.dumps({"field": fields, "resultsList": [["1.1", "1", "2"], ["2.2", "1"]]}))
    assert isinstance(answer["resultsList"], pa.ListArray)
    with pytest.raises(VendorError, match="row 1 has 2 cells for 3 fields"):
        page_table(fields, answer["resultsList"], TZ, FIRST)


def test_pages_read_straight_into_arrow_make_the_tables_orjson_pages_make(simulator: OpentrackerSimulator) -> None:
    window = DateWindow(FIRST, FIRST + dt.timedelta(days=1), TZ)

    def tables(arrow_pages: bool) -> list[Any]:
        client = OpentrackerClient(
            simulator.base_url, login=DEMO_LOGIN, password=DEMO_PASSWORD, timezone=TZ, arrow_pages=arrow_pages
        )
        pages = list(client.sessions(SITES[0], window))
        assert all(isinstance(page.rows, pa.ListArray) is arrow_pages for page in pages)
        return [page_table(page.fields, page.rows, TZ, FIRST) for page in pages]

    arrow, parsed = tables(True), tables(False)
    assert len(arrow) == len(parsed) > 1
    assert all(a.equals(b) for a, b in zip(arrow, parsed, strict=True))  # schema, values and nulls


def test_an_answer_with_a_number_among_its_cells_is_read_by_orjson() -> None:
    answer = parse_answer(b'{"field": ["session_id", "pages_viewed"], "resultsList": [["1.1", 12]], "nextToken": 5}')
    assert answer["resultsList"] == [["1.1", 12]] and answer["nextToken"] == 5
    table = page_table(answer["field"], answer["resultsList"], TZ, FIRST)
    assert table.column("pages_viewed").to_pylist() == [12]


def test_a_refused_ticket_id_falls_back_to_login_and_password(simulator: OpentrackerSimulator) -> None:
    client = OpentrackerClient(
        simulator.base_url, login=DEMO_LOGIN, password=DEMO_PASSWORD, ticket_id="expired-ticket-0000", timezone=TZ
    )
    assert client.probe(SITES[0], DateWindow(FIRST, FIRST, TZ)) > 0
    assert simulator.refused_tickets == 1 and simulator.tickets.issued == 1


def test_cli_backfill_window_by_window_shares_one_ticket(tmp_path: Path) -> None:
    simulator = OpentrackerSimulator(small_data())
    with simulator:
        env = {**env_for(simulator), "DLT_DATA_DIR": str(tmp_path / "dlt")}
        result = run_cli(
            "backfill", "opentracker", "--start", str(FIRST), "--end", str(FIRST + dt.timedelta(days=2)),
            "--progress", "off", env=env, cwd=tmp_path,
        )  # fmt: skip
        assert result.returncode == 0, result.stderr
        assert "complete: 3 windows" in result.stdout
        assert simulator.count("login_user") == 1  # the client (and its ticket) is shared by the windows
        assert sum(1 for _, limit, _ in simulator.served if limit == 1) == len(SITES)  # one site check each, not 3
        database = next(tmp_path.glob("*.duckdb"))
        with duckdb.connect(str(database), read_only=True) as connection:
            loaded = connection.sql("select count(*), count(distinct session_id) from opentracker.sessions").fetchall()
    expected = truth(simulator, FIRST, FIRST + dt.timedelta(days=2))
    assert loaded == [(len(expected), len(expected))]
