"""`clickhaul report`: one self-contained HTML page (inline SVG, no script, no CDN) drawn from the dbt marts.

Charts: daily visits per vendor and site, top pages, top channels; and a table of totals per site. Every chart is a
`<figure class="chart" data-chart=... data-marks=N>` whose marks (lines, points, bars) carry `<title>` tooltips.
"""

from __future__ import annotations

import datetime as dt
import html
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .dbt_runner import DEFAULT_SCHEMA, read_rows

PALETTE = (
    "#4e79a7",
    "#f28e2b",
    "#e15759",
    "#76b7b2",
    "#59a14f",
    "#edc948",
    "#b07aa1",
    "#ff9da7",
    "#9c755f",
    "#bab0ac",
)
TOP = 15
TOP_PER_VENDOR = 6
VENDOR_COLORS = {
    "pirsch": "#4e79a7",
    "webtrekk": "#f28e2b",
    "umami": "#59a14f",
    "opentracker": "#b07aa1",
    "matomo": "#76b7b2",
}


@dataclass(frozen=True)
class ReportData:
    traffic: list[tuple[str, str, dt.date, int]]  # site label, vendor, day, visits
    pages: list[tuple[str, str, int]]  # vendor, path, views
    channels: list[tuple[str, str, int]]  # vendor, channel, sum of daily visitors
    totals: list[tuple[str, str, int, int, float | None, int]]  # vendor, site, visits, pageviews, bounce rate, days


def load_data(query: Callable[[str], list[tuple[Any, ...]]], schema: str = DEFAULT_SCHEMA) -> ReportData:
    site_label = "coalesce(s.site_name, t.site_id)"
    traffic = query(
        f"select t.vendor || ' · ' || {site_label}, t.vendor, t.day, coalesce(t.visits, 0) "
        f"from {schema}.fct_traffic_daily t left join {schema}.dim_sites s on s.site_key = t.site_key "
        "order by 1, 3"
    )
    pages = query(
        "select vendor, path, views from (select vendor, path, sum(views) as views, row_number() over "
        "(partition by vendor order by sum(views) desc, path) as place "
        f"from {schema}.fct_pages_daily where views is not null group by vendor, path) as ranked "
        f"where place <= {TOP_PER_VENDOR} order by vendor, views desc, path"
    )
    channels = query(
        f"select vendor, value, sum(coalesce(visitors, visits)) from {schema}.fct_acquisition_daily "
        f"where dimension = 'channel' group by vendor, value order by 3 desc, 1, 2 limit {TOP}"
    )
    totals = query(
        f"select t.vendor, {site_label}, sum(t.visits), sum(t.pageviews), "
        "case when sum(case when t.bounces is not null then t.visits end) > 0 then "
        "cast(sum(t.bounces) as double precision) / sum(case when t.bounces is not null then t.visits end) end, "
        f"count(*) from {schema}.fct_traffic_daily t left join {schema}.dim_sites s on s.site_key = t.site_key "
        f"group by t.vendor, {site_label} order by 1, 2"
    )
    return ReportData(
        traffic=[(str(a), str(b), _date(c), int(d)) for a, b, c, d in traffic],
        pages=[(str(a), str(b), int(c)) for a, b, c in pages],
        channels=[(str(a), str(b), int(c)) for a, b, c in channels],
        totals=[
            (str(a), str(b), int(c or 0), int(d or 0), None if e is None else float(e), int(f))
            for a, b, c, d, e, f in totals
        ],
    )


def _date(value: Any) -> dt.date:
    return value if isinstance(value, dt.date) else dt.date.fromisoformat(str(value)[:10])


def _nice_max(value: float) -> float:
    if value <= 0:
        return 1.0
    magnitude = 10 ** (len(str(int(value))) - 1)
    for step in (1, 2, 2.5, 5, 10):
        if value <= step * magnitude:
            return float(step * magnitude)
    return float(10 * magnitude)


def _empty(chart: str, title: str) -> str:
    return (
        f'<figure class="chart" data-chart="{chart}" data-marks="0"><figcaption>{html.escape(title)}</figcaption>'
        '<p class="empty">No data in the marts for this chart.</p></figure>'
    )


def line_chart(chart: str, title: str, rows: Sequence[tuple[str, str, dt.date, int]], vendor: str = "") -> str:
    """One line per series (site), x = day, y = value."""
    if not rows:
        return _empty(chart, title)
    days = sorted({day for _, _, day, _ in rows})
    position = {day: index for index, day in enumerate(days)}
    series: dict[str, dict[dt.date, int]] = {}
    for label, _, day, value in rows:
        series.setdefault(label, {})[day] = value
    width, height, left, right, top, bottom = 920, 240, 60, 20, 15, 40
    plot_w, plot_h = width - left - right, height - top - bottom
    y_max = _nice_max(max(value for _, _, _, value in rows))

    def x(day: dt.date) -> float:
        return left + (plot_w * position[day] / (len(days) - 1) if len(days) > 1 else plot_w / 2)

    def y(value: float) -> float:
        return top + plot_h - plot_h * value / y_max

    parts = [f'<svg viewBox="0 0 {width} {height}" width="100%" role="img" aria-label="{html.escape(title)}">']
    for tick in range(5):
        level = y_max * tick / 4
        parts.append(
            f'<line class="grid" x1="{left}" x2="{width - right}" y1="{y(level):.1f}" y2="{y(level):.1f}"/>'
            f'<text class="axis" x="{left - 6}" y="{y(level) + 4:.1f}" text-anchor="end">{level:,.0f}</text>'
        )
    step = max(1, len(days) // 8)
    for day in days[::step]:
        parts.append(f'<text class="axis" x="{x(day):.1f}" y="{height - 12}" text-anchor="middle">{day:%b %d}</text>')
    marks = 0
    legend = []
    for index, (label, values) in enumerate(sorted(series.items())):
        color = PALETTE[index % len(PALETTE)]
        points = [(x(day), y(value), day, value) for day, value in sorted(values.items())]
        path = " ".join(f"{px:.1f},{py:.1f}" for px, py, _, _ in points)
        parts.append(
            f'<polyline class="series" data-series="{html.escape(label)}" fill="none" stroke="{color}" '
            f'stroke-width="2" points="{path}"/>'
        )
        for px, py, day, value in points:
            parts.append(
                f'<circle class="point" cx="{px:.1f}" cy="{py:.1f}" r="3" fill="{color}">'
                f"<title>{html.escape(label)} {day:%Y-%m-%d}: {value:,}</title></circle>"
            )
            marks += 1
        legend.append(f'<li><span class="swatch" style="background:{color}"></span>{html.escape(label)}</li>')
    parts.append("</svg>")
    return (
        f'<figure class="chart" data-chart="{chart}" data-vendor="{html.escape(vendor)}" data-marks="{marks}">'
        f"<figcaption>{html.escape(title)}</figcaption>"
        f'{"".join(parts)}<ul class="legend">{"".join(legend)}</ul></figure>'
    )


def traffic_panels(rows: Sequence[tuple[str, str, dt.date, int]]) -> list[str]:
    """One line chart per vendor, each on its own scale: vendors' volumes differ by orders of magnitude."""
    vendors = sorted({vendor for _, vendor, _, _ in rows})
    if not vendors:
        return [_empty("traffic", "Daily visits")]
    return [
        line_chart("traffic", f"{vendor}: daily visits per site", [row for row in rows if row[1] == vendor], vendor)
        for vendor in vendors
    ]


def bar_chart(chart: str, title: str, rows: Sequence[tuple[str, str, int]], unit: str) -> str:
    """Horizontal bars, one per (vendor, label), longest first."""
    if not rows:
        return _empty(chart, title)
    vendors = sorted({vendor for vendor, _, _ in rows})
    colors = {vendor: VENDOR_COLORS.get(vendor, PALETTE[index % len(PALETTE)]) for index, vendor in enumerate(vendors)}
    bar, gap, label_w, width = 20, 6, 330, 920
    height = len(rows) * (bar + gap) + 10
    top_value = max(value for _, _, value in rows) or 1
    parts = [f'<svg viewBox="0 0 {width} {height}" width="100%" role="img" aria-label="{html.escape(title)}">']
    for index, (vendor, label, value) in enumerate(rows):
        y = 5 + index * (bar + gap)
        length = max(1.0, (width - label_w - 90) * value / top_value)
        text = f"{vendor} · {label}"
        shown = text if len(text) <= 48 else text[:47] + "…"
        parts.append(
            f'<text class="label" x="{label_w - 8}" y="{y + bar * 0.7:.1f}" text-anchor="end">'
            f"{html.escape(shown)}</text>"
            f'<rect class="bar" x="{label_w}" y="{y}" width="{length:.1f}" height="{bar}" fill="{colors[vendor]}">'
            f"<title>{html.escape(text)}: {value:,} {unit}</title></rect>"
            f'<text class="value" x="{label_w + length + 6:.1f}" y="{y + bar * 0.7:.1f}">{value:,}</text>'
        )
    parts.append("</svg>")
    legend = "".join(
        f'<li><span class="swatch" style="background:{colors[v]}"></span>{html.escape(v)}</li>' for v in vendors
    )
    return (
        f'<figure class="chart" data-chart="{chart}" data-marks="{len(rows)}"><figcaption>{html.escape(title)}'
        f'</figcaption>{"".join(parts)}<ul class="legend">{legend}</ul></figure>'
    )


def totals_table(rows: Sequence[tuple[str, str, int, int, float | None, int]]) -> str:
    body = "".join(
        f"<tr><td>{html.escape(vendor)}</td><td>{html.escape(site)}</td><td>{days}</td><td>{visits:,}</td>"
        f"<td>{pageviews:,}</td><td>{'' if rate is None else f'{rate:.1%}'}</td></tr>"
        for vendor, site, visits, pageviews, rate, days in rows
    )
    return (
        '<table class="totals"><thead><tr><th>vendor</th><th>site</th><th>days</th><th>visits</th><th>page views</th>'
        f"<th>bounce rate</th></tr></thead><tbody>{body}</tbody></table>"
    )


STYLE = """
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; margin: 2rem auto; max-width: 960px;
       color: #222; padding: 0 1rem; }
h1 { font-size: 1.5rem; margin-bottom: .2rem; }
.note { color: #666; margin-top: 0; }
figure.chart { margin: 2rem 0; }
figcaption { font-weight: 600; font-size: 1.05rem; margin-bottom: .5rem; }
svg text { font-size: 11px; fill: #444; }
svg .grid { stroke: #e5e5e5; }
ul.legend { list-style: none; padding: 0; display: flex; flex-wrap: wrap; gap: .3rem 1.2rem; margin: .4rem 0 0; }
.swatch { display: inline-block; width: .8rem; height: .8rem; border-radius: 2px; margin-right: .35rem;
          vertical-align: -1px; }
table.totals { border-collapse: collapse; width: 100%; }
table.totals th, table.totals td { border-bottom: 1px solid #eee; padding: .3rem .5rem; text-align: right; }
table.totals th:nth-child(-n+2), table.totals td:nth-child(-n+2) { text-align: left; }
.empty { color: #999; font-style: italic; }
"""


def render_html(data: ReportData, title: str = "clickhaul: web analytics across vendors") -> str:
    days = sorted({day for _, _, day, _ in data.traffic})
    span = f"{days[0]:%Y-%m-%d} to {days[-1]:%Y-%m-%d}" if days else "no days loaded"
    sections = [
        "<h2>Daily visits per vendor and site</h2>",
        *traffic_panels(data.traffic),
        bar_chart(
            "pages", f"Top {TOP_PER_VENDOR} pages per vendor by page views (whole period)", data.pages, "page views"
        ),
        bar_chart(
            "channels",
            f"Top {TOP} channels (sum of daily unique visitors: visitor-days, not people)",
            data.channels,
            "visitor-days",
        ),
        "<h2>Totals per site</h2>",
        totals_table(data.totals),
    ]
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{html.escape(title)}</title><style>{STYLE}</style></head><body>"
        f"<h1>{html.escape(title)}</h1>"
        f'<p class="note">From the dbt marts (fct_traffic_daily, fct_pages_daily, fct_acquisition_daily), {span}. '
        "Unique visitors are not additive: the channel chart sums daily counts.</p>"
        f"{''.join(sections)}</body></html>\n"
    )


def write_report(
    out: str | Path,
    *,
    target: str = "duckdb",
    database_path: str | Path | None = None,
    credentials: Any = None,
    schema: str = DEFAULT_SCHEMA,
) -> ReportData:
    """Read the marts (built by `clickhaul dbt build`) and write the report to `out`."""
    from sources.common.errors import ConfigError

    if target == "duckdb" and (database_path is None or not Path(database_path).is_file()):
        raise ConfigError(f"--database {database_path} does not exist: load data and run `clickhaul dbt build` first")

    def query(sql: str) -> list[tuple[Any, ...]]:
        try:
            return read_rows(sql, target=target, database_path=database_path, credentials=credentials)
        except Exception as error:
            if "does not exist" in str(error) or "not found" in str(error).lower():
                raise ConfigError(
                    f"the marts are missing in schema {schema!r} ({str(error).splitlines()[0]}): "
                    "run `clickhaul dbt build` first"
                ) from None
            raise

    data = load_data(query, schema)
    Path(out).write_text(render_html(data), encoding="utf-8")
    return data
