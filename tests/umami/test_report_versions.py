"""Every report type, declared once, runs on Umami 2 and Umami 3 and lands what the real servers answered.

Each type is declared twice, once in Umami 2's words and once in Umami 3's, and both declarations run against a
simulator of each version that holds exactly the recorded traffic. The rows of both equal the real server's
recorded answer to the same report, flattened by the source (figures included). What a version cannot do is
refused before any request, in one line naming the report, the version and what to write instead.
"""

from __future__ import annotations

import datetime as dt
import json
from collections import Counter, defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from simulators.umami import UmamiSimulator
from sources.common.errors import ConfigError
from sources.umami import report_table
from sources.umami.reports import Call, flatten
from sources.umami.settings import REPORT_TYPES, ApiVersion, ReportType
from tests.support import Loader
from tests.support.retry import FAST_RETRY_ENV

from .recorded import FIRST_DAY, LAST_DAY, MORE, answer, recorded_simulator, recording, seeded_website

STEPS = [("/", "path"), ("/pricing", "path"), ("signup", "event")]
# report type → (its parameters in Umami 2's words, in Umami 3's words): the requests the recording made
DECLARED: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {
    "funnel": (
        {"window": 60, "steps": [{"type": "url" if t == "path" else t, "value": v} for v, t in STEPS]},
        {"window": 60, "steps": [{"type": t, "value": v} for v, t in STEPS]},
    ),
    "retention": ({}, {}),
    "utm": ({}, {}),
    "journey": ({"steps": 3}, {"steps": 3}),
    "revenue": ({"currency": "USD"}, {"currency": "USD"}),
    "goal": (
        {"goals": [{"type": "url", "value": "/pricing", "goal": 10}, {"type": "event", "value": "signup", "goal": 5}]},
        {"type": "event", "value": "signup", "goal": 5},
    ),
    "attribution": (
        {"model": "firstClick", "steps": [{"type": "event", "value": "checkout"}], "currency": "USD"},
        {"model": "first-click", "type": "event", "step": "checkout", "currency": "USD"},
    ),
    "breakdown": (
        {"fields": [{"name": "browser", "type": "string", "label": "Browser"}], "filters": []},
        {"fields": ["browser"]},
    ),
    "performance": ({}, {}),
}
WORDS = ("Umami 2 words", "Umami 3 words")
REPORTS = {report.name: report for report in REPORT_TYPES}


def declarations(version: ApiVersion) -> list[dict[str, Any]]:
    return [
        {"type": kind, "name": f"{kind} in {words}", "parameters": parameters}
        for kind, pair in DECLARED.items()
        if REPORTS[kind].api_name(version)
        for words, parameters in zip(WORDS, pair, strict=True)
    ]


def recorded_loader(sim: UmamiSimulator, website: str, workdir: Path, reports: list[dict[str, Any]]) -> Loader:
    env = {
        "SOURCES__UMAMI__BASE_URL": sim.url,
        "SOURCES__UMAMI__USERNAME": "admin",
        "SOURCES__UMAMI__PASSWORD": sim.users["admin"],
        "SOURCES__UMAMI__WEBSITE_IDS": website,
        "SOURCES__UMAMI__TIMEZONE": "UTC",
        "SOURCES__UMAMI__REPORT_WINDOW": "month",  # one window: 2026-12-01..03, the recorded reports' range
        "SOURCES__UMAMI__REPORTS": json.dumps(reports),
        "CLICKHAUL_TODAY": "2026-12-04T14:25:02+00:00",  # the day the recording was made
        **FAST_RETRY_ENV,
    }
    return Loader("umami", workdir, env)


@pytest.fixture(params=["2", "3"], ids=["umami2", "umami3"], scope="module")
def loaded(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Loader]]:
    """Both declarations of every report type, run once against a simulator holding the recorded traffic."""
    version = request.param
    sim = recorded_simulator(version)
    try:
        website = seeded_website(sim)
        load = recorded_loader(sim, website, tmp_path_factory.mktemp(f"umami{version}"), declarations(version))
        tables = ",".join(report.table for report in REPORT_TYPES)
        load.run(FIRST_DAY, LAST_DAY, resources=f"websites,reports,{tables}")
        assert sim.count(r"/reports/", status=400) == 0  # every request was one the server's version takes
        yield version, load
    finally:
        sim.stop()


def plain(value: Any) -> Any:
    if isinstance(value, dt.datetime):
        return value.astimezone(dt.UTC).isoformat()
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, float):
        return round(value, 9)
    return value


def columns(report: ReportType) -> list[str]:
    return [*report.key, *report.values]


def loaded_rows(load: Loader, report: ReportType, name: str) -> list[tuple[Any, ...]]:
    if report.table not in load.tables():
        return []  # no rows at all (Umami 2's retention of back-dated traffic)
    picked = ", ".join(f'"{c}"' for c in columns(report))
    found = load.query(f"select {picked} from umami.{report.table} where report_name = ?", [name])
    return sorted((tuple(plain(v) for v in row) for row in found), key=repr)


def recorded_rows(version: ApiVersion, report: ReportType) -> tuple[list[tuple[Any, ...]], int]:
    """The real server's answer to this report, flattened and typed as the source stores it; and how many rows
    the answer had before the recording cut its list to 5."""
    api_name = report.api_name(version)
    style = f"v{version}-style body"
    entry = next(e for e in recording(version) if e["name"] == f"POST /api/reports/{api_name} ({style})")
    body = entry["request"]["body"]
    parameters = body if version == "2" else {**body["parameters"], "filters": body["filters"]}
    answered = answer(version, entry["name"])
    more = 0
    if isinstance(answered, list):
        more = sum(int(m.group(1)) for item in answered if isinstance(item, str) and (m := MORE.match(item)))
        answered = [item for item in answered if not isinstance(item, str)]
    target = {"goal": 5} if report.name == "goal" and version == "3" else {}
    rows = flatten(report, answered, Call(dict(parameters), target), "UTC")
    if report.name == "breakdown" and version == "3":
        rows = by_browser(rows)  # the recording broke Umami 3's rows down by browser and os
    typed = report_table(report).arrow(rows).select(columns(report)).to_pylist()
    return sorted((tuple(plain(row[c]) for c in columns(report)) for row in typed), key=repr), len(rows) + more


def by_browser(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    summed: dict[str, Counter[str]] = defaultdict(Counter)
    for row in rows:
        for metric in ("views", "visitors", "visits", "bounces", "totaltime"):
            summed[row["dimensions"]["browser"]][metric] += int(row[metric])
    return [{"dimensions": {"browser": browser}, **numbers} for browser, numbers in summed.items()]


@pytest.mark.parametrize("kind", sorted(DECLARED))
def test_one_declaration_runs_on_both_versions_and_lands_what_the_real_server_answered(
    loaded: tuple[ApiVersion, Loader], kind: str
) -> None:
    version, load = loaded
    report = REPORTS[kind]
    if report.api_name(version) is None:
        pytest.skip(f"Umami {version} has no {kind} report (refusing it is tested below)")
    expected, total = recorded_rows(version, report)
    in_v2_words, in_v3_words = (loaded_rows(load, report, f"{kind} in {words}") for words in WORDS)
    assert len(in_v3_words) == total or kind == "goal", (len(in_v3_words), total)
    # the recorded rows are all there (of a recorded list of 8 the recording showed 5)
    for rows in (in_v2_words, in_v3_words):
        left = list(rows)
        named = {row[1] for row in rows}  # a goal declaration holds the recorded goals it names
        for row in (r for r in expected if kind != "goal" or r[1] in named):
            assert row in left, f"{kind}: recorded row {row} not loaded; loaded {rows}"
            left.remove(row)
    if kind != "goal":
        assert in_v2_words == in_v3_words
    if kind == "retention":
        assert bool(expected) == (version == "3")  # Umami 2 files back-dated sessions under today: no cohort


def test_utm_from_umami_2_holds_the_dashboards_parameter_value_views_rows(
    loaded: tuple[ApiVersion, Loader],
) -> None:
    """Regression: Umami 2.20 answers `[{"url_query", "num"}]`, which crashed report_utm with "'list' object has no
    attribute 'items'". Both versions now land the rows Umami 2's dashboard shows."""
    _, load = loaded
    rows = load.query("select parameter, value, views from umami.report_utm where report_name = 'utm in Umami 3 words'")
    assert sorted(rows) == [
        ("utm_campaign", "december", 4),
        ("utm_medium", "cpc", 4),
        ("utm_medium", "email", 4),
        ("utm_source", "google", 4),
        ("utm_source", "newsletter", 4),
    ]
    raw = answer("2", "POST /api/reports/utm (v2-style body)")
    assert isinstance(raw, list) and set(raw[0]) == {"url_query", "num"}
    assert sorted((r["parameter"], r["value"], r["views"]) for r in flatten(REPORTS["utm"], raw, Call({}))) == sorted(
        rows
    )


def test_goal_declared_with_several_goals_runs_one_request_per_goal_on_umami_3(
    loaded: tuple[ApiVersion, Loader],
) -> None:
    version, load = loaded
    rows = load.query(
        "select goal_type, goal_value, goal, result, total from umami.report_goal "
        "where report_name = 'goal in Umami 2 words' order by goal_value"
    )
    if version == "2":  # one request; a path goal counts every event on the path
        assert rows == [("path", "/pricing", 10, 34, None), ("event", "signup", 5, 7, None)]
    else:  # one request per goal; sessions that reached it, of all sessions
        assert rows == [("path", "/pricing", 10, 20, 20), ("event", "signup", 5, 7, 20)]


REFUSALS = [
    ("2", {"type": "performance", "name": "Vitals"}, r"'Vitals' \(performance\): Umami 2 has no performance report.*"),
    (
        "2",
        {"type": "funnel", "name": "Filtered", "parameters": {"window": 5, "steps": [], "filters": {"os": "iOS"}}},
        r"'Filtered' \(funnel\): Umami 2's funnel report takes no filters: remove `filters`",
    ),
    (
        "3",
        {"type": "attribution", "name": "Two", "parameters": {"model": "firstClick", "steps": [{}, {}]}},
        r"'Two' \(attribution\): attribution takes exactly one conversion, 2 steps were given: write type",
    ),
    (
        "2",
        {"type": "journey", "name": "Short", "parameters": {"steps": 2}},
        r"'Short' \(journey\): Umami 2's journey takes steps from 3 to 7, not 2: write steps = 3",
    ),
]


@pytest.mark.parametrize(("version", "declared", "message"), REFUSALS, ids=[r[1]["name"] for r in REFUSALS])
@pytest.mark.parametrize("api_version", ["auto", "explicit"])
def test_what_a_version_cannot_run_is_refused_before_any_report_request(
    version: ApiVersion, declared: dict[str, Any], message: str, api_version: str, tmp_path: Path
) -> None:
    sim = recorded_simulator(version)
    try:
        website = seeded_website(sim)
        sim.clear_log()
        load = recorded_loader(sim, website, tmp_path, [declared])
        if api_version == "explicit":
            load.env = {**load.env, "SOURCES__UMAMI__API_VERSION": version}
        with pytest.raises(ConfigError, match=message) as refused:
            load.run(FIRST_DAY, LAST_DAY, resources="websites,report_funnel,report_performance,report_journey")
        assert "\n" not in str(refused.value)
        assert sim.count(r"/reports") == 0
        if api_version == "explicit":
            assert sim.requests == []  # with the version configured, not even a login
    finally:
        sim.stop()
