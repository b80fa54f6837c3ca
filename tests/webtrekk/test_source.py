"""Runs of the Webtrekk source into DuckDB against the simulator over HTTP."""

from __future__ import annotations

import datetime as dt
import json
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from simulators.harness import Faults
from simulators.webtrekk import ENDPOINT, WebtrekkSimulator
from sources.common.errors import ClickhaulError, ConfigError
from sources.webtrekk.tables import parse_day
from tests.support import Loader, files_containing
from tests.support.webtrekk import DAYS_ANALYSIS, LAST_DAY, PAGES_ANALYSIS, PIVOT_ANALYSIS, make_env

START, END = LAST_DAY - dt.timedelta(days=3), LAST_DAY - dt.timedelta(days=2)
CONTENT_TITLES = [
    "Pages",
    "Category (Text) \u2013 Main category",
    "Category (Text) \u2013 Page type",
    "Category (Figure) \u2013 Word count",
]


def schema_descriptions(loader: Loader, table: str) -> dict[str, str]:
    raw = loader.query("select schema from webtrekk._dlt_version order by inserted_at desc limit 1")[0][0]
    columns = json.loads(raw)["tables"][table]["columns"]
    return {
        name: column["description"]
        for name, column in columns.items()
        if column.get("description") and not name.startswith("_dlt")
    }


def test_export_of_25k_rows_lands_complete_with_header_names(
    simulator: WebtrekkSimulator, loader: Callable[..., Loader]
) -> None:
    run = loader(export_types=["content_categories"])
    summary = run.run(resources="export_content_categories")
    header, truth = simulator.export_table({"type": "content_categories"})
    assert header == CONTENT_TITLES and len(truth) == 25_500
    assert simulator.calls.count("exportData") == 3  # 10,000 + 10,000 + 5,500: paged until the short page
    assert summary.rows["export_content_categories"] == 25_500
    rows = run.query(
        "select pages, category_text_main_category, category_text_page_type, category_figure_word_count "
        "from webtrekk.export_content_categories order by pages"
    )
    # empty cells land as NULL (clickhaul's convention for every vendor), everything else verbatim
    assert rows == [tuple(cell if cell != "" else None for cell in row.cells) for row in truth]
    assert schema_descriptions(run, "export_content_categories") == {
        "pages": CONTENT_TITLES[0],
        "category_text_main_category": CONTENT_TITLES[1],
        "category_text_page_type": CONTENT_TITLES[2],
        "category_figure_word_count": CONTENT_TITLES[3],
    }
    assert simulator.logins == simulator.logouts == 1


def test_every_export_type_and_filter(simulator: WebtrekkSimulator, loader: Callable[..., Loader]) -> None:
    types: list[Any] = [
        {"type": "content_categories", "filter": "news/*", "rows_without_data": 0},
        "customer_categories",
        "page_urls",
        {"type": "media_categories", "record_interval_begin": "2025-09-01", "record_interval_end": "2026-03-31"},
        "media_playtime",
        "basket_categories",
        "product_urls",
        {
            "type": "campaigns",
            "active_campaigns": 1,
            "data_source_type_filter": "all",
            "campaigns_start_time_interval_begin": "2026-08-01",
            "campaigns_start_time_interval_end": "2026-12-31",
        },
        "content_categories_time",
        "basket_categories_time",
        "campaigns_time",
        {"type": "ecommerce_parameters", "title": "Shipping method"},
        {"type": "ecommerce_parameters", "title": "Payment method"},
        "time_categories",
    ]
    run = loader(export_types=types, export_page_size=2500)
    summary = run.run(
        START, END, resources=",".join(sorted({f"export_{t if isinstance(t, str) else t['type']}" for t in types}))
    )
    assert len(summary.rows) == 13
    _, news = simulator.export_table({"type": "content_categories", "filter": "news/*"})
    assert run.count("export_content_categories") == len(news) == 2550
    campaign_filters = {
        "activeCampaigns": 1,
        "dataSourceTypeFilter": "all",
        "campaignsStartTimeIntervalBegin": "2026-08-01",
        "campaignsStartTimeIntervalEnd": "2026-12-31",
    }
    _, active = simulator.export_table({"type": "campaigns", **campaign_filters})
    _, all_active = simulator.export_table({"type": "campaigns", "activeCampaigns": 1, "dataSourceTypeFilter": "all"})
    assert run.count("export_campaigns") == len(active) and 0 < len(active) < len(all_active) < 600
    assert run.count("export_campaigns", "campaign_start < '2026-08-01'") == 0
    record_interval = {"recordIntervalBegin": "2025-09-01", "recordIntervalEnd": "2026-03-31"}
    _, recorded = simulator.export_table({"type": "media_categories", **record_interval})
    assert run.count("export_media_categories") == len(recorded) and 0 < len(recorded) < 400
    assert run.count("export_campaigns", "active <> '1'") == 0
    # date-bound types: one window per day, keyed by day and their first column
    for day in (START, END):
        _, truth = simulator.export_table(
            {"type": "content_categories_time", "startDate": day.isoformat(), "endDate": day.isoformat()}
        )
        got = run.query(
            "select pages, category_text_promotion from webtrekk.export_content_categories_time "
            "where day = ? order by pages",
            [day],
        )
        assert got == [tuple(row.cells) for row in truth]
    titles = run.query(
        "select parameter_title, count(*) from webtrekk.export_ecommerce_parameters group by 1 order by 1"
    )
    assert [title for title, _ in titles] == ["Payment method", "Shipping method"]
    assert run.query("select min(day), max(day) from webtrekk.export_time_categories") == [(START, END)]
    assert simulator.logins == simulator.logouts == 1  # one token for all 13 resources, deleted at the end


def test_analysis_with_footers_localised_titles_and_string_numbers_lands_typed(
    simulator: WebtrekkSimulator, loader: Callable[..., Loader]
) -> None:
    run = loader(language="de", export_types=[], analyses=[PAGES_ANALYSIS, PIVOT_ANALYSIS, DAYS_ANALYSIS])
    run.run(START, END)  # --resources does not know config-named tables yet (see docs/webtrekk.md)
    types = dict(
        run.query(
            "select column_name, data_type from information_schema.columns "
            "where table_name = 'analysis_pages' and column_name not like '_dlt%'"
        )
    )
    assert types == {
        "day": "DATE",
        "rank": "BIGINT",
        "pages": "VARCHAR",
        "page_impressions": "DOUBLE",
        "visitors": "DOUBLE",
        "page_impressions_percent": "DOUBLE",
        "account": "VARCHAR",  # part of the key: the implicit account `default` here
    }
    # English column names whatever the login language; the localised titles are the descriptions
    described = schema_descriptions(run, "analysis_pages")
    assert described["pages"] == "Seiten" and described["visitors"] == "Besucher"
    for day in (START, END):
        truth = simulator.aggregate(["Pages"], ["Page Impressions", "Visitors"], day, day, [])
        got = run.query("select pages, page_impressions, visitors from webtrekk.analysis_pages where day = ?", [day])
        assert sorted(got) == sorted((key[0], float(v[0]), float(v[1])) for key, v in truth)
        shares = run.query("select sum(page_impressions_percent) from webtrekk.analysis_pages where day = ?", [day])
        assert shares[0][0] == pytest.approx(100.0, abs=0.5)  # percentage points, not fractions
        pivot = simulator.aggregate(["Browsers", "Pages"], ["Visits"], day, day, [])
        got = run.query("select browsers, page, visits from webtrekk.analysis_browser_pages where day = ?", [day])
        assert sorted(got) == sorted((*key, float(v[0])) for key, v in pivot)  # footers (subtotals) dropped
    assert simulator.calls.count("getAnalysisData") > 2 * 3  # paged with startRow/rowLimit
    # a time object: one request for the window, the day read from DD.MM.YYYY cells
    truth = simulator.aggregate(["Days", "Browsers"], ["Page Impressions"], START, END, [])
    got = run.query("select day, browsers, page_impressions from webtrekk.analysis_browser_days")
    assert sorted(got) == sorted((parse_day(key[0]), key[1], float(v[0])) for key, v in truth)


def test_report_lands_every_analysis_type(simulator: WebtrekkSimulator, loader: Callable[..., Loader]) -> None:
    run = loader(export_types=[], reports=["Overview Report"])
    run.run(START, END)
    tables = run.tables()
    assert {
        "report_overview_report__pages",
        "report_overview_report__browsers",
        "report_overview_report__scorecard",
        "report_overview_report__kpi",
    } <= tables
    assert run.query("select count(distinct day) from webtrekk.report_overview_report__kpi") == [(2,)]
    kpi = run.query("select day, page_impressions from webtrekk.report_overview_report__kpi order by day")
    assert kpi == [(day, float(simulator._daily(day)[0])) for day in (START, END)]
    series = run.query(
        "select count(*), min(date), max(date) from webtrekk.report_overview_report__scorecard__series where day = ?",
        [END],
    )
    assert series == [(30, END - dt.timedelta(days=29), END)]  # the scorecard's chart, DD.MM.YYYY parsed
    kpi_values = run.query(
        "select label, value from webtrekk.report_overview_report__kpi__kpi_values where day = ?", [END]
    )
    assert dict(kpi_values) == {"Average": float(simulator._daily(END)[0]), "Total": float(simulator._daily(END)[0])}
    scorecard = run.query("select key_figure from webtrekk.report_overview_report__scorecard where day = ?", [END])
    assert sorted(row[0] for row in scorecard) == ["Page Impressions", "Visitors", "Visits"]
    pivot_footers = run.query(
        "select count(*) from webtrekk.report_overview_report__browsers "
        "where pages like '%footer%' or browsers like '%footer%'"
    )
    assert pivot_footers == [(0,)]


def test_rerunning_a_window_adds_no_duplicates(simulator: WebtrekkSimulator, loader: Callable[..., Loader]) -> None:
    run = loader(export_types=["time_categories", "campaigns_time"], analyses=[PAGES_ANALYSIS], reports=["Clickstream"])
    first = run.run(START, END)
    counts = {table: run.count(table) for table in first.rows}
    run.run(START, END)
    assert {table: run.count(table) for table in first.rows} == counts
    assert run.query("select count(*) - count(distinct (day, pages)) from webtrekk.analysis_pages") == [(0,)]
    # incremental: the second run re-reads only the lookback days, still without duplicates
    incremental = loader(
        "incremental",
        export_types=["time_categories"],
        start_date=(LAST_DAY - dt.timedelta(days=6)).isoformat(),
        lookback_days=2,
    )
    incremental.run(resources="export_time_categories")
    before = simulator.calls.count("exportData")
    incremental.run(resources="export_time_categories")
    assert simulator.calls.count("exportData") - before <= 3  # lookback days (and today), not the whole history
    assert (
        incremental.query("select count(*), count(distinct day) from webtrekk.export_time_categories")[0][0]
        == incremental.query("select count(distinct day) from webtrekk.export_time_categories")[0][0]
    )


def test_run_survives_a_refusal_and_expired_token_with_identical_data(
    simulator: WebtrekkSimulator, loader: Callable[..., Loader]
) -> None:
    limits = [(1000, 0.3), (20000, 60.0)]
    clean = loader("clean", limits, export_types=["content_categories"], export_page_size=5000)
    clean.run(resources="export_content_categories")
    simulator.clear_log()
    simulator.refuse_next(1, method="exportData")
    simulator.expire_tokens_after(3)
    faulty = loader("faulty", limits, export_types=["content_categories"], export_page_size=5000)
    summary = faulty.run(resources="export_content_categories")
    assert simulator.refusals == 1 and summary.retries >= 1
    assert simulator.logins == 3  # clean run, this run, and once more after the token expired
    sql = "select * exclude (_dlt_load_id) from webtrekk.export_content_categories order by pages"
    assert faulty.query(sql) == clean.query(sql)


def test_a_client_faster_than_the_server_recovers_without_losing_rows(
    simulator: WebtrekkSimulator, loader: Callable[..., Loader]
) -> None:
    simulator.set_rate_limits([(3, 1.0)])
    run = loader(limits=[(20, 1.0)], export_types=["media_categories"], export_page_size=50)
    run.run(resources="export_media_categories")
    assert simulator.refusals >= 1  # we tripped the server, backed off for its window, and went on
    _, truth = simulator.export_table({"type": "media_categories"})
    rows = run.query("select * exclude (_dlt_load_id, account) from webtrekk.export_media_categories order by media")
    assert rows == [tuple(row.cells) for row in truth]  # 400 rows, none lost, none twice


def test_survives_chaos(simulator: WebtrekkSimulator, loader: Callable[..., Loader]) -> None:
    simulator.set_faults(Faults.chaos(0.15, seed=3))
    run = loader(export_types=["media_categories", "time_categories"], export_page_size=100, analyses=[PAGES_ANALYSIS])
    run.run(START, END)
    assert any(request.fault for request in simulator.requests)
    _, media = simulator.export_table({"type": "media_categories"})
    assert run.count("export_media_categories") == len(media) == 400
    truth = sum(len(simulator.aggregate(["Pages"], ["Page Impressions"], d, d, [])) for d in (START, END))
    assert run.count("analysis_pages") == truth


def test_logs_out_also_when_the_run_fails(simulator: WebtrekkSimulator, loader: Callable[..., Loader]) -> None:
    broken = {"name": "broken", "config": {"analysisObjects": [{"title": "Nonsense"}]}}
    run = loader(export_types=["media_categories"], analyses=[broken])
    with pytest.raises(ClickhaulError, match="Unknown analysis object"):
        run.run(START, END)
    assert simulator.logins >= 1 and simulator.logins == simulator.logouts


def test_retired_methods(data, loader: Callable[..., Loader], tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    simulator = WebtrekkSimulator(data, retired=True, rate_limits=[(1000, 1.0)])
    with simulator:
        env = make_env(simulator, export_types="media_playtime, media_categories")  # a comma list, as in a shell
        run = Loader("webtrekk", tmp_path / "retired", env)
        summary = run.run(START, END)
        assert summary.rows["export_media_playtime"] == summary.rows["export_media_categories"] == 400
        assert summary.rows["accounts"] == 2
        assert "metrics" not in summary.rows  # legacy metadata stays empty on a cloud account
        env = make_env(simulator, export_types=[], analyses=[PAGES_ANALYSIS])
        with pytest.raises(ClickhaulError, match="retired getAnalysisData"):
            Loader("webtrekk", tmp_path / "retired2", env).run(START, END)


@pytest.mark.parametrize(
    ("setting", "value", "message"),
    [
        ("export_types", ["nope"], "unknown export type 'nope'"),
        ("export_types", ["ecommerce_parameters"], "needs the parameter's title"),
        ("export_types", [{"type": "page_urls", "filter": "x*"}], "`filter` works for content"),
        ("export_types", [{"type": "campaigns", "record_interval_begin": "2024-01-01"}], "recordIntervalEnd"),
        ("export_page_size", "0", "export_page_size"),
        ("rate_limits", [[5]], "rate_limits entry"),
        ("language", "xx", "language"),
        ("analyses", [{"name": "Bad Name", "config": {"analysisObjects": ["Pages"]}}], "name 'Bad Name'"),
        ("analyses", [{"name": "a", "config": {"analysisObjects": ["Pages"], "dynamicTime": "today"}}], "dynamicTime"),
        ("base_url", "http://report2.webtrekk.de/cgi-bin/wt/JSONRPC.cgi", "plain HTTP"),
        ("timezone", "Mars/Base", "timezone"),
    ],
)
def test_bad_config_fails_before_any_request(
    simulator: WebtrekkSimulator, loader: Callable[..., Loader], setting: str, value: object, message: str
) -> None:
    run = loader(**{setting: value})
    with pytest.raises(ConfigError, match=message):
        run.run(START, END)
    assert simulator.arrivals == []


def test_secrets_stay_out_of_logs_and_files(
    simulator: WebtrekkSimulator, loader: Callable[..., Loader], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    simulator.expire_tokens_after(2)  # a re-login: two tokens to leak
    run = loader(export_types=["media_categories", "page_urls"], export_page_size=5000)
    run.run(START, END, resources="accounts,export_media_categories,export_page_urls")
    secrets = [simulator.data.password, *simulator._token_language]
    assert len(secrets) == 3
    assert files_containing(tmp_path, secrets) == []
    assert not any(secret in caplog.text for secret in secrets)
    assert not any(
        secret in request.path + json.dumps(request.query) for request in simulator.requests for secret in secrets
    )
    assert ENDPOINT in {request.path for request in simulator.requests}


def test_an_export_that_comes_back_empty_empties_its_table(
    simulator: WebtrekkSimulator, loader: Callable[..., Loader]
) -> None:
    run = loader(export_types=[{"type": "content_categories", "filter": "news/*"}], export_page_size=5000)
    run.run(resources="export_content_categories")
    assert run.count("export_content_categories") == 2550
    emptied = loader(export_types=[{"type": "content_categories", "filter": "nothing-matches*"}])
    emptied.workdir = run.workdir  # the same pipeline and database
    emptied.run(resources="export_content_categories")
    assert run.count("export_content_categories") == 0
