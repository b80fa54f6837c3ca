"""`clickhaul migrate FROM --to TO`: move history between vendors and prove it arrived.

1. FROM is loaded into its warehouse (as `clickhaul run` does) when the table lacks days of the range;
2. its rows of the range (a view `migrate.<from>_rows`) become hits (the FROM's mapping) and are pushed to TO through
   TO's destination: the ledger makes a second run send nothing, and a killed run resumes where it stopped;
3. TO is read back through clickhaul's own source for TO (its statistics, into `clickhaul_migrate_<to>.duckdb`);
4. each UTC day is reconciled: visits, page views and events on each side, and the difference explained by counted
   causes: what the mapping made of the rows, rows rejected before sending, bot filtering, days outside the
   target's accepted range, and the target's own counting rule for visits. The result goes to the table
   `migrate.reconciliation` of FROM's warehouse and to an HTML page.

Webtrekk cannot be a FROM: its exports are aggregates (per day and dimension), not hits; see README "Migrating".
Matomo is read from its visitor log: each action (`matomo.actions`) joined to its visit (`matomo.visits`) in the
view, so the push streams one table of hits like any other FROM.
"""

from __future__ import annotations

import datetime as dt
import html
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb

from destinations.common.push import InvalidHit
from destinations.matomo.mappings import MATOMO_VISIT_COLUMNS, mapping
from sources.common.clock import today_utc, wall_time
from sources.common.config import environment
from sources.common.errors import ConfigError
from sources.common.tables import TableRows, WarehouseTables, sql_name

SCHEMA = "migrate"
RECONCILIATION_TABLE = "reconciliation"
METRICS = ("visits", "pageviews", "events")
CAUSES = ("mapped", "rejected", "bot_filtered", "outside_range", "counting_rule")
SESSION_GAP = 30 * 60


@dataclass(frozen=True)
class From:
    vendor: str
    table: str
    mapping: str
    resources: str
    time_column: str
    visit_column: str  # rows with one value (per UTC day) are one visit on the source's side
    # The rows to push when they are not the table as it is (a join): SQL built from the warehouse's columns.
    rows_sql: Callable[[duckdb.DuckDBPyConnection], str] | None = None
    # Days loaded beyond the range on each side: a source whose days are not UTC days, or whose rows of the range
    # need rows of the day before (a visit running past midnight), loads them too.
    margin_days: int = 0

    def source_pages(self, row: Mapping[str, Any]) -> tuple[int, int]:
        """(page views, events) the source itself counts for one row."""
        if self.vendor == "opentracker":
            return int(row.get("pages_viewed") or 0), 0
        if self.vendor == "matomo":  # downloads, outlinks, searches, goals: Matomo counts neither
            kind = row.get("type")
            return int(kind == "action"), int(kind == "event")
        return (1, 0) if int(row.get("event_type") or 1) == 1 else (0, 1)


def matomo_rows(connection: duckdb.DuckDBPyConnection) -> str:
    """Each Matomo action with its visit's visitor, IP, browser, OS, referrer (`MATOMO_VISIT_COLUMNS`, null where
    this Matomo did not report a field) and `page_url`, the last page viewed at or before it (the page a download,
    outlink or search happened on). A left join: an action whose visit row is missing is refused (no browser),
    never lost from the count."""
    present = {
        row[0]
        for row in connection.execute(
            "select column_name from information_schema.columns where table_schema = 'matomo' and table_name = 'visits'"
        ).fetchall()
    }
    visit = ", ".join(f"v.{sql_name(c)}" if c in present else f"cast(null as varchar) as {sql_name(c)}"
                      for c in MATOMO_VISIT_COLUMNS)  # fmt: skip
    # two Matomo servers loaded as two accounts may share site and visit ids
    account = " and v.account = a.account" if "account" in present else ""
    partition = "a.account, " if "account" in present else ""
    return (
        "select a.*, last_value(case when a.type = 'action' then a.url end ignore nulls) over (partition by "
        f"{partition}a.site_id, a.id_visit order by a.position rows between unbounded preceding and current row) "
        f"as page_url, {visit} from matomo.actions a left join matomo.visits v on v.site_id = a.site_id and "
        f"v.id_visit = a.id_visit{account}"
    )


FROMS = {
    "opentracker": From("opentracker", "opentracker.sessions", "opentracker_sessions", "sessions", "session_start",
                        "session_id"),
    "umami": From("umami", "umami.events", "umami_events", "events", "created_at", "session_id"),
    "matomo": From("matomo", "matomo.actions", "matomo_actions", "visits", "timestamp", "id_visit", matomo_rows,
                   margin_days=1),
}  # fmt: skip
TOS = ("matomo", "umami", "pirsch")
PAIRS = {("opentracker", "matomo"), ("opentracker", "umami"), ("opentracker", "pirsch"), ("umami", "matomo"),
         ("umami", "pirsch"), ("matomo", "umami"), ("matomo", "pirsch")}  # fmt: skip


def check_pair(source: str, target: str) -> From:
    if source == "webtrekk" or source == "webtrekk_analytics":
        raise ConfigError(
            "webtrekk exports are aggregates (figures per day and dimension), not hits: they cannot be replayed into "
            f"{target}. What can move is the daily figures, into a warehouse table beside {target}'s own (README, "
            "'Migrating')"
        )
    if (source, target) not in PAIRS:
        pairs = ", ".join(f"{a} --to {b}" for a, b in sorted(PAIRS))
        raise ConfigError(f"migrate {source} --to {target} is not a supported pair: use one of {pairs}")
    return FROMS[source]


# -- what the target should show ----------------------------------------------------------------------------
@dataclass
class Expected:
    """Per UTC day and metric: the source's count, the counted causes, and what the target should show."""

    source: Counter[tuple[str, str]] = field(default_factory=Counter)  # (day, metric) -> count
    causes: Counter[tuple[str, str, str]] = field(default_factory=Counter)  # (day, metric, cause) -> count
    expected: Counter[tuple[str, str]] = field(default_factory=Counter)
    reasons: Counter[str] = field(default_factory=Counter)  # rejection reasons, for the page


def cause_of(reason: str) -> str:
    lowered = reason.lower()
    if "bot" in lowered or "user agent" in lowered:
        return "bot_filtered"
    if "max_age_days" in lowered or "outside the range" in lowered:
        return "outside_range"
    return "rejected"


def visits_by_rule(target: str, hits: Iterable[tuple[str, float, str, bool]]) -> Counter[str]:
    """Visits per UTC day as the target counts them, from accepted hits (visitor, unix time, day, new_visit):
    Umami: the visitors of a day, from its page views only, as Umami's stats count them (its visits follow the
    hour hits *arrive*, so back-dated hits are compared by visitor); Pirsch: 30-minute sessions of a daily-salted
    visitor, on the day they start; Matomo: 30-minute visits (or `new_visit`) of a visitor, on the day of their
    last action."""
    per_visitor: dict[str, list[tuple[float, str, bool]]] = defaultdict(list)
    for visitor, moment, day, new in hits:
        key = f"{visitor}|{day}" if target == "pirsch" else visitor
        per_visitor[key].append((moment, day, new))
    counted: Counter[str] = Counter()
    if target == "umami":
        for items in per_visitor.values():
            for day in {day for _, day, _ in items}:
                counted[day] += 1
        return counted
    for items in per_visitor.values():
        items.sort()
        visits: list[list[tuple[float, str, bool]]] = []
        for item in items:
            joins = visits and not (target == "matomo" and item[2]) and item[0] - visits[-1][-1][0] <= SESSION_GAP
            if joins:
                visits[-1].append(item)
            else:
                visits.append([item])
        for visit in visits:
            counted[visit[0][1] if target == "pirsch" else visit[-1][1]] += 1
    return counted


def expect(
    rows: Iterable[Mapping[str, Any]], origin: From, target: str, prepare: Callable[[Mapping[str, Any], str], Any]
) -> Expected:
    """Map every row as the push does, validate each hit as the target does, and count what should arrive."""
    from destinations.matomo.validation import to_utc_datetime

    row_mapping = mapping(origin.mapping)
    found = Expected()
    source_visits: dict[str, set[str]] = defaultdict(set)
    accepted_visits: dict[str, set[str]] = defaultdict(set)
    lost_visit_cause: dict[tuple[str, str], str] = {}
    accepted: list[tuple[str, float, str, bool]] = []
    for row in rows:
        started = to_utc_datetime(row[origin.time_column])
        day = started.date().isoformat()
        visit = f"{row.get(origin.visit_column)}|{day}"
        source_visits[day].add(visit)
        pages, events = origin.source_pages(row)
        found.source[(day, "pageviews")] += pages
        found.source[(day, "events")] += events
        try:
            hits = row_mapping.to_hits(row)
        except (ValueError, TypeError) as error:
            found.causes[(day, "pageviews", "rejected")] -= pages
            found.causes[(day, "events", "rejected")] -= events
            found.reasons[f"row cannot be mapped: {error}"] += 1
            lost_visit_cause.setdefault((day, visit), "rejected")
            continue
        made = Counter("events" if hit.get("e_a") or hit.get("e_c") else "pageviews" for hit in hits)
        found.causes[(day, "pageviews", "mapped")] += made["pageviews"] - pages
        found.causes[(day, "events", "mapped")] += made["events"] - events
        for hit in hits:
            metric = "events" if hit.get("e_a") or hit.get("e_c") else "pageviews"
            try:
                prepared = prepare(hit, "0" * 32)
            except (InvalidHit, ValueError) as error:
                cause = cause_of(str(error))
                found.causes[(day, metric, cause)] -= 1
                found.reasons[str(error).split(":")[0][:100]] += 1
                lost_visit_cause.setdefault((day, visit), cause)
                continue
            moment = to_utc_datetime(hit["cdt"]) if hit.get("cdt") is not None else started
            hit_day = moment.date().isoformat()
            found.expected[(hit_day, metric)] += 1
            if hit_day != day:  # a session running past midnight: its later hits count on the next day
                found.causes[(day, metric, "mapped")] -= 1
                found.causes[(hit_day, metric, "mapped")] += 1
            if target != "umami" or metric == "pageviews":  # Umami's visitors are those with a page view that day
                accepted.append((prepared.visitor, moment.timestamp(), hit_day, str(hit.get("new_visit")) == "1"))
            accepted_visits[day].add(visit)
    for day, visits in source_visits.items():
        found.source[(day, "visits")] += len(visits)
        for visit in visits - accepted_visits[day]:
            found.causes[(day, "visits", lost_visit_cause.get((day, visit), "rejected"))] -= 1
    for day, count in visits_by_rule(target, accepted).items():
        found.expected[(day, "visits")] += count
    for day in {day for day, _ in found.source} | {day for day, _ in found.expected}:
        counted = found.source[(day, "visits")] + sum(found.causes[(day, "visits", c)] for c in CAUSES)
        found.causes[(day, "visits", "counting_rule")] += found.expected[(day, "visits")] - counted
    return found


# -- reading the target back ----------------------------------------------------------------------------------
def read_back(target: str, config: Any, first: dt.date, last: dt.date, workdir: Path) -> dict[tuple[str, str], int]:
    """What the target shows per UTC day, read through clickhaul's own source for it (Matomo: its Reporting API,
    until clickhaul has a Matomo source)."""
    if target == "matomo":
        return read_matomo(config, first, last)
    from pipelines.registry import vendor

    from .runner import run_vendor

    database = workdir / f"clickhaul_migrate_{target}.duckdb"
    if target == "umami":
        env = {
            "SOURCES__UMAMI__BASE_URL": str(config.base_url),
            "SOURCES__UMAMI__WEBSITE_IDS": str(config.website_id),
            "SOURCES__UMAMI__TIMEZONE": "UTC",
        }
        if config.api_key:
            env["SOURCES__UMAMI__API_KEY"] = str(config.api_key)
        else:
            env |= {"SOURCES__UMAMI__USERNAME": str(config.username), "SOURCES__UMAMI__PASSWORD": str(config.password)}
        resources, queries = (
            "website_stats,events",
            {
                "visits": "select day, sum(visitors) from umami.website_stats group by 1",
                "pageviews": "select day, sum(pageviews) from umami.website_stats group by 1",
                "events": "select created_at::date, count(*) from umami.events where event_type = 2 group by 1",
            },
        )
    else:
        target_domain = config.target()
        domain = target_domain.domain_id
        target_domain.close()
        target_domain.reader.close()
        env = {
            "SOURCES__PIRSCH__BASE_URL": str(config.base_url),
            "SOURCES__PIRSCH__CLIENT_ID": str(config.client_id),
            "SOURCES__PIRSCH__CLIENT_SECRET": str(config.client_secret),
            "SOURCES__PIRSCH__DOMAIN_IDS": domain,
            "SOURCES__PIRSCH__TIMEZONE": "UTC",
        }
        resources, queries = (
            "visitors,events",
            {
                "visits": "select day, sum(sessions) from pirsch.visitors group by 1",
                "pageviews": "select day, sum(views) from pirsch.visitors group by 1",
                "events": "select day, sum(views) from pirsch.events group by 1",
            },
        )
    import dlt

    with environment(env):
        run_vendor(
            vendor(target), start=first, end=last, resources=resources, progress="off",
            pipeline_name=f"clickhaul_migrate_{target}", pipelines_dir=str(workdir / ".migrate_pipelines"),
            destination_config=dlt.destinations.duckdb(str(database)), full_refresh=True,
        )  # fmt: skip
    shown: dict[tuple[str, str], int] = {}
    with duckdb.connect(str(database), read_only=True) as connection:
        for metric, sql in queries.items():
            try:
                counted = connection.execute(sql).fetchall()
            except duckdb.CatalogException:  # nothing of this kind was loaded: dlt made no table
                counted = []
            for day, count in counted:
                if first <= day <= last:
                    shown[(day.isoformat(), metric)] = int(count or 0)
    return shown


def read_matomo(config: Any, first: dt.date, last: dt.date) -> dict[tuple[str, str], int]:
    """Visits, page views and events per day from Matomo's visitor log (Live.getLastVisitsDetails): visits on the
    day of their last action, actions on their own day, as Matomo's VisitsSummary and Actions reports count them
    (a visit past midnight is listed on the next day, so that day is read too)."""
    tracker = config.tracker()
    shown: dict[tuple[str, str], int] = {}
    try:
        day = first
        while day <= last + dt.timedelta(days=1):
            visits = tracker.visits(str(config.idsite), day, day, None)
            if day <= last:
                shown[(day.isoformat(), "visits")] = len(visits)
            for action in (a for v in visits for a in v.get("actionDetails") or () if isinstance(a, dict)):
                metric = {"action": "pageviews", "event": "events"}.get(str(action.get("type")))
                moment = action.get("timestamp")
                if metric is None or moment is None:
                    continue
                action_day = dt.datetime.fromtimestamp(int(moment), dt.UTC).date()
                if first <= action_day <= last:
                    key = (action_day.isoformat(), metric)
                    shown[key] = shown.get(key, 0) + 1
            day += dt.timedelta(days=1)
    finally:
        tracker.close()
    for day_index in range((last - first).days + 1):
        for metric in ("pageviews", "events"):
            shown.setdefault(((first + dt.timedelta(days=day_index)).isoformat(), metric), 0)
    return shown


# -- the run --------------------------------------------------------------------------------------------------
@dataclass
class Migration:
    source: str
    target: str
    first: dt.date
    last: dt.date
    rows: list[tuple[str, str, int, dict[str, int], int, int, int]]  # day, metric, source, causes, expected, target
    push: Any
    loaded: bool
    reasons: Counter[str]

    @property
    def unexplained(self) -> int:
        return sum(abs(row[6]) for row in self.rows)

    def render(self) -> str:
        lines = [
            f"migrate {self.source} → {self.target}, {self.first} to {self.last} (UTC days)"
            + (f"; {self.source} loaded first" if self.loaded else ""),
            self.push.render(),
            f"{'day':<10} {'metric':<9} {'source':>8} "
            + " ".join(f"{c:>13}" for c in CAUSES)
            + f" {'expected':>8} {'target':>8} {'unexplained':>11}",
        ]
        for day, metric, source, causes, expected, shown, off in self.rows:
            lines.append(
                f"{day:<10} {metric:<9} {source:>8} " + " ".join(f"{causes[c]:>13}" for c in CAUSES)
                + f" {expected:>8} {shown:>8} {off:>11}"
            )  # fmt: skip
        verdict = "exact: every difference is explained by a counted cause" if not self.unexplained else (
            f"NOT exact: {self.unexplained} unexplained"
        )  # fmt: skip
        lines.append(f"reconciliation {verdict}")
        for reason, count in self.reasons.most_common(10):  # what was not moved, and why (the rejected table)
            lines.append(f"not sent: {reason}: {count:,}")
        return "\n".join(lines)


def destination_config(target: str) -> Any:
    if target == "umami":
        from destinations.umami import resolve_config as umami_config

        return umami_config()
    if target == "pirsch":
        from destinations.pirsch import resolve_config as pirsch_config

        return pirsch_config()
    from destinations.matomo import resolve_config as matomo_config

    return matomo_config()


def run_migrate(
    source: str,
    target: str,
    first: dt.date,
    last: dt.date,
    *,
    database: Path,
    workdir: Path,
    html_path: Path | None = None,
    retry: Any = None,
) -> Migration:
    origin = check_pair(source, target)
    if last < first:
        raise ConfigError(f"--end {last} is before --start {first}")
    config = destination_config(target)
    loaded = load_source_if_needed(origin, first, last, database, workdir)
    dataset, table = origin.table.split(".")
    view = f"{source}_rows"
    begin = dt.datetime.combine(first, dt.time(), dt.UTC)
    end = dt.datetime.combine(last + dt.timedelta(days=1), dt.time(), dt.UTC)
    with duckdb.connect(str(database)) as connection:
        connection.execute(f'create schema if not exists "{SCHEMA}"')
        rows_sql = origin.rows_sql(connection) if origin.rows_sql else f'select * from "{dataset}"."{table}"'
        time = sql_name(origin.time_column)
        connection.execute(
            f'create or replace view "{SCHEMA}"."{view}" as select * from ({rows_sql}) '
            f"where {time} >= '{begin.isoformat()}' and {time} < '{end.isoformat()}'"
        )
    now = wall_time()
    push = push_to(target, config, database, f"{SCHEMA}.{view}", origin.mapping, retry, lambda: now)
    found = expect_from(database, view, origin, target, config, now)
    shown = read_back(target, config, first, last, workdir)
    rows = []
    day = first
    while day <= last:
        for metric in METRICS:
            key = (day.isoformat(), metric)
            causes = {cause: found.causes[(key[0], metric, cause)] for cause in CAUSES}
            rows.append((key[0], metric, found.source[key], causes, found.expected[key], shown.get(key, 0),
                         shown.get(key, 0) - found.expected[key]))  # fmt: skip
        day += dt.timedelta(days=1)
    migration = Migration(source, target, first, last, rows, push, loaded, found.reasons)
    store(database, migration)
    if html_path is not None:
        html_path.write_text(page(migration))
    return migration


def load_source_if_needed(origin: From, first: dt.date, last: dt.date, database: Path, workdir: Path) -> bool:
    """Load FROM's range when its table lacks any of its UTC days (a day with no rows counts as lacking)."""
    dataset, table = origin.table.split(".")
    days: set[dt.date] = set()
    if database.exists():
        with duckdb.connect(str(database), read_only=True) as connection:
            present = connection.execute(
                "select count(*) from information_schema.tables where table_schema = ? and table_name = ?",
                [dataset, table],
            ).fetchall()[0][0]
            if present:
                days = {
                    row[0]
                    for row in connection.execute(
                        f"select distinct cast(timezone('UTC', {sql_name(origin.time_column)}) as date) "
                        f'from "{dataset}"."{table}"'
                    ).fetchall()
                }
    wanted = {first + dt.timedelta(days=n) for n in range((last - first).days + 1)}
    if wanted <= days:
        return False
    import dlt

    from pipelines.registry import vendor

    from .runner import run_vendor

    margin = dt.timedelta(days=origin.margin_days)
    end = max(last, min(last + margin, today_utc()))  # never a day after today
    run_vendor(
        vendor(origin.vendor), start=first - margin, end=end, resources=origin.resources, progress="off",
        destination_config=dlt.destinations.duckdb(str(database)),
    )  # fmt: skip
    return True


def push_to(target: str, config: Any, database: Path, table: str, mapping_name: str, retry: Any, now: Any) -> Any:
    if target == "umami":
        from destinations.umami import push_table as push_umami

        return push_umami(database, table, config=config, mapping_name=mapping_name, retry=retry, now=now)
    if target == "pirsch":
        from destinations.pirsch import push_table as push_pirsch

        return push_pirsch(database, table, config=config, mapping_name=mapping_name, retry=retry, now=now)
    from destinations.matomo import push_table as push_matomo

    return push_matomo(database, table, config=config, mapping_name=mapping_name, retry=retry, now=now)


def expect_from(database: Path, view: str, origin: From, target: str, config: Any, now: float) -> Expected:
    """`expect` over the view's rows, each hit checked by the target's own `prepare`."""
    if target == "umami":
        checker: Any = config.target()
    elif target == "pirsch":
        checker = config.target()
    else:
        from destinations.matomo.sender import MatomoTarget

        checker = MatomoTarget(config.options(), config.tracker())
    try:
        with duckdb.connect(str(database), read_only=True) as connection:
            rows = TableRows.of(WarehouseTables(str(database), SCHEMA, connection=connection), view)

            def every() -> Iterable[Mapping[str, Any]]:
                for chunk in rows.chunks([origin.time_column], 5_000):
                    yield from chunk

            return expect(every(), origin, target, lambda hit, hit_id: checker.prepare(hit, hit_id, now))
    finally:
        if target == "matomo":
            checker.tracker.close()
        else:
            checker.close()
            checker.reader.close()


def store(database: Path, migration: Migration) -> None:
    """`migrate.reconciliation`: one row per pair, day and metric, replaced by each run of the pair and range."""
    with duckdb.connect(str(database)) as connection:
        connection.execute(
            f'create table if not exists "{SCHEMA}"."{RECONCILIATION_TABLE}" (source varchar, target varchar, '
            "day date, metric varchar, source_count bigint, mapped bigint, rejected bigint, bot_filtered bigint, "
            "outside_range bigint, counting_rule bigint, expected bigint, target_count bigint, unexplained bigint, "
            "reconciled_at timestamptz)"
        )
        connection.execute(
            f'delete from "{SCHEMA}"."{RECONCILIATION_TABLE}" where source = ? and target = ? and day between ? and ?',
            [migration.source, migration.target, migration.first, migration.last],
        )
        now = dt.datetime.fromtimestamp(wall_time(), dt.UTC)
        connection.executemany(
            f'insert into "{SCHEMA}"."{RECONCILIATION_TABLE}" values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)',
            [
                [migration.source, migration.target, day, metric, source, *(causes[c] for c in CAUSES), expected,
                 shown, off, now]
                for day, metric, source, causes, expected, shown, off in migration.rows
            ],
        )  # fmt: skip


def page(migration: Migration) -> str:
    """The reconciliation as one self-contained HTML page (no script, no CDN), like `clickhaul report`."""
    head = "".join(f"<th>{html.escape(h)}</th>" for h in ("day", "metric", "source", *CAUSES, "expected", "target",
                                                            "unexplained"))  # fmt: skip
    body = []
    for day, metric, source, causes, expected, shown, off in migration.rows:
        cells = [day, metric, source, *(causes[c] for c in CAUSES), expected, shown, off]
        style = ' class="off"' if off else ""
        body.append(f"<tr{style}>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in cells) + "</tr>")
    reasons = "".join(
        f"<li>{html.escape(reason)}: {count:,}</li>" for reason, count in migration.reasons.most_common(20)
    )
    verdict = "exact" if not migration.unexplained else f"{migration.unexplained} unexplained"
    title = f"Migration {migration.source} → {migration.target}, {migration.first} to {migration.last}"
    return (
        f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title><style>"
        "body{font-family:system-ui,sans-serif;margin:2em}table{border-collapse:collapse}"
        "td,th{border:1px solid #ccc;padding:.25em .6em;text-align:right}tr.off{background:#fdd}"
        f"</style></head><body><h1>{html.escape(title)}</h1><p>Reconciliation: <b>{verdict}</b>. Days are UTC. "
        "Causes are counted: <i>mapped</i> (hits the mapping made beyond the source's count), <i>rejected</i>, "
        "<i>bot_filtered</i> and <i>outside_range</i> (hits not sent, with reasons in the destination's rejected "
        "table), <i>counting_rule</i> (visits as the target counts them).</p>"
        f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"
        f"<h2>Reasons hits were not sent</h2><ul>{reasons or '<li>none</li>'}</ul>"
        f"<pre>{html.escape(migration.push.render())}</pre></body></html>"
    )
