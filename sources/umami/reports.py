"""Umami reports: request bodies per API version and each report type's answer flattened into rows.

Answers are nested differently per type (maps of maps, lists of lists, sections); each flattener turns one answer
into rows carrying the type's key columns (settings.REPORT_TYPES), so every type lands in a plain table.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any

from sources.common.errors import ConfigError
from sources.common.windows import DateWindow

from .settings import REPORT_TYPE_BY_API_NAME, ApiVersion, ReportType

Rows = list[dict[str, Any]]
# Parameters a saved report carries that describe its own date range: the run's window replaces them.
RANGE_KEYS = {"dateRange", "startDate", "endDate", "timezone", "websiteId"}


def report_type(api_name: str) -> ReportType | None:
    return REPORT_TYPE_BY_API_NAME.get(api_name)


def saved_parameters(report: Mapping[str, Any]) -> dict[str, Any]:
    """Umami 2 stores parameters as a JSON string, Umami 3 as an object."""
    raw = report.get("parameters") or {}
    if isinstance(raw, str):
        try:
            raw = json.loads(raw) if raw.strip() else {}
        except ValueError:
            raw = {}
    return {key: value for key, value in dict(raw).items() if key not in RANGE_KEYS}


def request_body(
    version: ApiVersion, api_type: str, website_id: str, window: DateWindow, parameters: Mapping[str, Any]
) -> dict[str, Any]:
    start = window.start_at.in_tz("UTC").format("YYYY-MM-DDTHH:mm:ss.SSS") + "Z"
    end = window.end_at.subtract(microseconds=1000).in_tz("UTC").format("YYYY-MM-DDTHH:mm:ss.SSS") + "Z"
    days = len(window.days)
    if version == "2":
        date_range = {
            "startDate": start,
            "endDate": end,
            "unit": "day",
            "offset": 0,
            "num": days,
            "value": f"range:{int(window.start_at.timestamp() * 1000)}:{int(window.end_at.timestamp() * 1000) - 1}",
        }
        return {**parameters, "websiteId": website_id, "dateRange": date_range, "timezone": window.tz}
    filters = parameters.get("filters")
    body_parameters = {k: v for k, v in parameters.items() if k != "filters"}
    return {
        "websiteId": website_id,
        "type": api_type,
        "filters": filters if isinstance(filters, dict) else {},
        "parameters": {**body_parameters, "startDate": start, "endDate": end, "timezone": window.tz},
    }


def _utm(answer: Any, parameters: Mapping[str, Any]) -> Rows:
    rows = []
    for parameter, values in (answer or {}).items():
        if isinstance(values, dict):  # Umami 2: {"utm_source": {"newsletter": 4}}
            rows += [{"parameter": parameter, "value": value, "views": n} for value, n in values.items()]
        else:  # Umami 3: {"utm_source": [{"utm": "newsletter", "views": 4}]}
            rows += [{"parameter": parameter, "value": item.get("utm"), "views": item.get("views")} for item in values]
    return rows


def _revenue(answer: Any, parameters: Mapping[str, Any]) -> Rows:
    answer = answer or {}
    rows: Rows = [
        {
            "section": "chart",
            "label": point.get("t"),
            "currency": point.get("x") or "",
            "t": point.get("t"),
            "sum": point.get("y"),
        }
        for point in answer.get("chart") or []
    ]
    currency = parameters.get("currency") or ""
    rows += [
        {"section": "country", "label": item.get("name"), "currency": currency, "sum": item.get("value")}
        for item in answer.get("country") or []
    ]
    if isinstance(answer.get("total"), dict):
        rows.append({"section": "total", "label": "total", "currency": currency, **answer["total"]})
    rows += [{"section": "table", "label": item.get("currency"), **item} for item in answer.get("table") or []]
    return rows


def _journey(answer: Any, parameters: Mapping[str, Any]) -> Rows:
    rows = []
    for path in answer or []:
        items = list(path.get("items") or [])
        row = {"items": items, "count": path.get("count")}
        row.update({f"step_{i + 1}": item for i, item in enumerate(items[:7])})
        rows.append(row)
    return rows


def _retention(answer: Any, parameters: Mapping[str, Any]) -> Rows:
    return [
        {
            "date": item.get("date"),
            "day_number": item.get("day"),
            "visitors": item.get("visitors"),
            "return_visitors": item.get("returnVisitors"),
            "percentage": item.get("percentage"),
        }
        for item in answer or []
    ]


BREAKDOWN_METRICS = ("views", "visitors", "visits", "bounces", "totaltime")


def _breakdown(answer: Any, parameters: Mapping[str, Any]) -> Rows:
    """Each row: the metrics plus the values of the report's fields, which become the `dimensions` key."""
    rows = []
    for item in answer or []:
        dimensions = {key: value for key, value in item.items() if key not in BREAKDOWN_METRICS}
        rows.append({"dimensions": dimensions, **{key: item.get(key) for key in BREAKDOWN_METRICS}})
    return rows


def _goal(answer: Any, parameters: Mapping[str, Any]) -> Rows:
    if isinstance(answer, dict):  # Umami 3: one goal per report, {num, total}
        return [
            {
                "goal_type": parameters.get("type") or "",
                "goal_value": str(parameters.get("value") or ""),
                "result": answer.get("num"),
                "total": answer.get("total"),
            }
        ]
    return [  # Umami 2: [{type, value, goal, result}]
        {
            "goal_type": g.get("type"),
            "goal_value": str(g.get("value")),
            "goal": g.get("goal"),
            "result": g.get("result"),
        }
        for g in answer or []
    ]


def _funnel(answer: Any, parameters: Mapping[str, Any]) -> Rows:
    return [
        {
            "step": index,
            "step_type": item.get("type"),
            "step_value": item.get("value"),
            **{key: item.get(key) for key in ("visitors", "previous", "dropped", "dropoff", "remaining")},
        }
        for index, item in enumerate(answer or [], start=1)
    ]


def _attribution(answer: Any, parameters: Mapping[str, Any]) -> Rows:
    """`{channel: [{name, value}], total: {visitors, visits, pageviews}}` → one row per (channel, name)."""
    rows = []
    for channel, items in (answer or {}).items():
        if isinstance(items, dict):
            rows += [{"channel": channel, "label": name, "value": value} for name, value in items.items()]
        else:
            rows += [{"channel": channel, "label": item.get("name"), "value": item.get("value")} for item in items]
    return rows


def _performance(answer: Any, parameters: Mapping[str, Any]) -> Rows:
    answer = answer or {}
    rows: Rows = []
    for section, items in answer.items():
        if isinstance(items, dict):
            rows.append({"section": section, "label": section, **items})
        else:
            rows += [{"section": section, "label": item.get("name") or item.get("t"), **item} for item in items or []]
    return rows


FLATTENERS: dict[str, Callable[[Any, Mapping[str, Any]], Rows]] = {
    "utm": _utm,
    "revenue": _revenue,
    "journey": _journey,
    "retention": _retention,
    "breakdown": _breakdown,
    "goal": _goal,
    "funnel": _funnel,
    "attribution": _attribution,
    "performance": _performance,
}


def flatten(report: ReportType, answer: Any, parameters: Mapping[str, Any]) -> Rows:
    rows = FLATTENERS[report.name](answer, parameters)
    for row in rows:
        for name, kind in report.key.items():
            if row.get(name) is None:
                row[name] = "" if kind in ("text", "json") else row.get(name)  # key columns cannot be null
    return rows


def declared_reports(reports: Any) -> list[dict[str, Any]]:
    """`sources.umami.reports`: a list of {type, name, website_id?, parameters?}; checked before any request."""
    if reports is None or reports == "":
        return []
    if isinstance(reports, str):
        try:
            reports = json.loads(reports)
        except ValueError:
            raise ConfigError(
                "sources.umami.reports is not a list: write it as a TOML array of tables "
                '([[sources.umami.reports]] type = "funnel" ...) or a JSON list'
            ) from None
    if not isinstance(reports, list):
        raise ConfigError("sources.umami.reports must be a list of {type, name, website_id, parameters}")
    checked = []
    for index, entry in enumerate(reports):
        if not isinstance(entry, Mapping) or not entry.get("type") or not entry.get("name"):
            raise ConfigError(f"sources.umami.reports[{index}] needs `type` and `name` (and optional parameters)")
        kind = report_type(str(entry["type"]))
        if kind is None:
            known = ", ".join(sorted(FLATTENERS))
            raise ConfigError(f"sources.umami.reports[{index}]: unknown report type {entry['type']!r}: use {known}")
        parameters = entry.get("parameters") or {}
        if not isinstance(parameters, Mapping):
            raise ConfigError(f"sources.umami.reports[{index}].parameters must be a table of report parameters")
        checked.append(
            {
                "type": kind.name,
                "name": str(entry["name"]),
                "website_id": entry.get("website_id"),
                "parameters": dict(parameters),
            }
        )
    return checked
