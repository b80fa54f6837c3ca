"""Umami reports: one declaration for both versions, the request each version needs, and answers as rows.

A report is declared once (`[[sources.umami.reports]]`, in Umami 2's or Umami 3's words) and `calls` translates
what differs between the versions: step types (`url` / `path`), attribution models (`firstClick` /
`first-click`) and their conversion (`steps` / `type` + `step`), goals (`goals` / one `goal` per request), breakdown
fields and filters (objects and a list / names and an object). What one version cannot do is refused before any
request, naming the report, the version and what to write instead. Each flattener turns one answer (maps of maps,
lists of lists, sections, Umami 2's raw UTM query strings) into rows carrying the type's key columns
(settings.REPORT_TYPES), named the same whatever the version.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

import pendulum

from sources.common.errors import ConfigError
from sources.common.windows import DateWindow

from .settings import REPORT_TYPE_BY_API_NAME, ApiVersion, ReportType

Rows = list[dict[str, Any]]
# Parameters a saved report carries that describe its own date range: the run's window replaces them.
RANGE_KEYS = {"dateRange", "startDate", "endDate", "timezone", "websiteId"}
# The same thing in each version's words: (Umami 2, Umami 3).
STEP_TYPES = (("url", "path"),)
MODELS = (("firstClick", "first-click"), ("lastClick", "last-click"))
FIELD_NAMES = (("url", "path"), ("host", "hostname"))
# Umami 2 takes filters only in its insights report (Umami 3's breakdown); Umami 3 in every report.
V2_FILTERED = ("breakdown",)
V2_JOURNEY_STEPS = (3, 7)


def in_words(pairs: tuple[tuple[str, str], ...], value: Any, version: ApiVersion) -> Any:
    """`value` in `version`'s words, when it is one of the pairs; else unchanged."""
    for v2, v3 in pairs:
        if value in (v2, v3):
            return v2 if version == "2" else v3
    return value


def v3_words(pairs: tuple[tuple[str, str], ...], value: Any) -> Any:
    return in_words(pairs, value, "3")


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


@dataclass(frozen=True)
class Call:
    """One report request in the server's words, and values every row of its answer carries (a goal's target)."""

    parameters: dict[str, Any]
    row: dict[str, Any] = field(default_factory=dict)


class Refused(Exception):
    """What one version cannot do, in a sentence saying what to write instead."""


def calls(report: ReportType, version: ApiVersion, name: str, parameters: Mapping[str, Any]) -> list[Call]:
    """The requests that run a declared (or saved) report on `version`; a ConfigError before any request when the
    report or one of its parameters does not exist there."""
    try:
        if report.api_name(version) is None:
            raise Refused(
                f"Umami {version} has no {report.name} report (Umami 3 added it): remove it from "
                "sources.umami.reports, or run it against an Umami 3 server"
            )
        params = dict(parameters)
        filters = params.pop("filters", None)
        if version == "2" and filters and report.name not in V2_FILTERED:
            raise Refused(
                f"Umami 2's {report.name} report takes no filters: remove `filters` (on Umami 2 only the "
                "breakdown report, its insights, is filtered)"
            )
        translate = TRANSLATIONS.get(report.name)
        found = translate(params, version) if translate else [Call(params)]
        if filters is not None or (version == "2" and report.name in V2_FILTERED):
            for call in found:
                call.parameters["filters"] = filter_words(filters, version)
        return found
    except Refused as refusal:
        raise ConfigError(f"sources.umami.reports {name!r} ({report.name}): {refusal}") from None


def _steps(steps: Any, version: ApiVersion) -> Any:
    if not isinstance(steps, list):
        return steps
    return [{**s, "type": in_words(STEP_TYPES, s.get("type"), version)} if isinstance(s, Mapping) else s for s in steps]


def _funnel(params: dict[str, Any], version: ApiVersion) -> list[Call]:
    return [Call({**params, "steps": _steps(params.get("steps"), version)})]


def _goal(params: dict[str, Any], version: ApiVersion) -> list[Call]:
    """Umami 2 checks several goals per request, each with a target (`goals`); Umami 3 one goal per request. A goal
    on an event property is `event-data` with Umami 2, an `event` with `property` and `operator` with Umami 3."""
    rest = {k: v for k, v in params.items() if k not in ("goals", "type", "value", "goal", "operator", "property")}
    goals = params.get("goals")
    if not isinstance(goals, list):
        goals = [{k: params[k] for k in ("type", "value", "goal", "operator", "property") if k in params}]
    if version == "2":
        translated = []
        for goal in goals:
            kind = in_words(STEP_TYPES, goal.get("type"), "2")
            if kind == "event" and goal.get("property"):
                kind = "event-data"
            translated.append({**goal, "type": kind, "goal": goal.get("goal", 1)})
        return [Call({**rest, "goals": translated})]
    found = []
    for goal in goals:
        kind = in_words(STEP_TYPES, goal.get("type"), "3")
        one = {**rest, "type": "event" if kind == "event-data" else kind, "value": goal.get("value")}
        one |= {k: goal[k] for k in ("operator", "property") if goal.get(k) is not None}
        found.append(Call(one, {"goal": goal.get("goal")}))
    return found


def _attribution(params: dict[str, Any], version: ApiVersion) -> list[Call]:
    """Umami 2: `model` firstClick/lastClick and `steps` holding the one conversion; Umami 3: `model`
    first-click/last-click, the conversion as `type` and `step`."""
    steps = params.get("steps")
    if isinstance(steps, list):
        if len(steps) != 1 or not isinstance(steps[0], Mapping):
            raise Refused(
                f"attribution takes exactly one conversion, {len(steps)} steps were given: write "
                "type = 'path' or 'event' and step = the page or event name"
            )
        kind, conversion = steps[0].get("type"), steps[0].get("value")
    else:
        kind, conversion = params.get("type"), params.get("step")
    rest = {k: v for k, v in params.items() if k not in ("steps", "type", "step", "model")}
    model = in_words(MODELS, params.get("model"), version)
    kind = in_words(STEP_TYPES, kind, version)
    if version == "2":
        return [Call({**rest, "model": model, "steps": [{"type": kind, "value": conversion}]})]
    return [Call({**rest, "model": model, "type": kind, "step": conversion})]


def _breakdown(params: dict[str, Any], version: ApiVersion) -> list[Call]:
    """Umami 2's insights takes fields as `{name, type, label}` objects, Umami 3's breakdown plain names."""
    names = [f.get("name") if isinstance(f, Mapping) else f for f in params.get("fields") or []]
    names = [in_words(FIELD_NAMES, n, version) for n in names]
    if version == "2":
        fields: list[Any] = [{"name": n, "type": "string", "label": n} for n in names]
    else:
        fields = names
    return [Call({**params, "fields": fields})]


def _journey(params: dict[str, Any], version: ApiVersion) -> list[Call]:
    steps = params.get("steps")
    low, high = V2_JOURNEY_STEPS
    if version == "2" and isinstance(steps, int) and not low <= steps <= high:
        raise Refused(f"Umami 2's journey takes steps from {low} to {high}, not {steps}: write steps = {low} or more")
    return [Call(params)]


TRANSLATIONS: dict[str, Callable[[dict[str, Any], ApiVersion], list[Call]]] = {
    "funnel": _funnel,
    "goal": _goal,
    "attribution": _attribution,
    "breakdown": _breakdown,
    "journey": _journey,
}


def filter_words(filters: Any, version: ApiVersion) -> Any:
    """Umami 3: `{name: value}`; Umami 2's insights: `[{name, type, operator, value}]` (equality)."""
    if isinstance(filters, list):
        pairs = {f.get("name"): f.get("value") for f in filters if isinstance(f, Mapping)}
    else:
        pairs = dict(filters or {})
    pairs = {in_words(FIELD_NAMES, k, version): v for k, v in pairs.items()}
    if version == "2":
        return [{"name": k, "type": "string", "operator": "eq", "value": v} for k, v in pairs.items()]
    return pairs


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


# -- answers → rows ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Answer:
    """What a flattener needs besides the answer: the request's parameters and the report's timezone."""

    call: Call
    timezone: str

    @property
    def parameters(self) -> dict[str, Any]:
        return self.call.parameters


def _utm(answer: Any, context: Answer) -> Rows:
    """Umami 3: `{utm_source: [{utm, views}]}`; Umami 2.20: `[{url_query, num}]`, raw query strings, summed per
    parameter value as the Umami 2 dashboard does; older Umami 2: `{utm_source: {value: views}}`."""
    views: dict[tuple[str, str], int] = defaultdict(int)
    if isinstance(answer, list):
        for item in answer:
            for parameter, value in parse_qsl(str(item.get("url_query") or "")):
                if parameter.startswith("utm_"):
                    views[(parameter, value)] += int(item.get("num") or 0)
        return [{"parameter": p, "value": v, "views": n} for (p, v), n in views.items()]
    rows = []
    for parameter, values in (answer or {}).items():
        if isinstance(values, dict):
            rows += [{"parameter": parameter, "value": value, "views": n} for value, n in values.items()]
        else:
            rows += [{"parameter": parameter, "value": item.get("utm"), "views": item.get("views")} for item in values]
    return rows


def _revenue(answer: Any, context: Answer) -> Rows:
    answer = answer or {}
    currency = context.parameters.get("currency") or ""
    rows: Rows = [
        {
            "section": "chart",
            "label": f"{point.get('t')} {point.get('x') or ''}".strip(),
            "currency": currency,
            "t": point.get("t"),
            "event_name": point.get("x"),
            "sum": point.get("y"),
            "count": point.get("count"),
        }
        for point in answer.get("chart") or []
    ]
    for section in ("country", "region", "referrer", "channel"):
        rows += [
            {
                "section": section,
                "label": item.get("name") or item.get("country") or "",
                "currency": currency,
                "sum": item.get("value"),
            }
            for item in answer.get(section) or []
        ]
    total = answer.get("total")
    if isinstance(total, dict):
        rows.append({"section": "total", "label": "total", "currency": currency, **total})
        if isinstance(total.get("comparison"), dict):
            rows.append({"section": "comparison", "label": "total", "currency": currency, **total["comparison"]})
    rows += [{"section": "table", "label": item.get("currency"), **item} for item in answer.get("table") or []]
    for row in rows:
        row.pop("comparison", None)
        if isinstance(row.get("t"), str):
            row["t"] = local_instant(row["t"], context.timezone)
    return rows


def local_instant(text: str, timezone: str) -> Any:
    """A bucket label ("2026-12-01 00:00:00", local to the report's timezone) or an instant ("...Z") as UTC."""
    if text.endswith("Z") or "T" in text:
        return text
    return pendulum.parse(text, tz=timezone).in_tz("UTC")  # type: ignore[union-attr]


def _journey_rows(answer: Any, context: Answer) -> Rows:
    rows = []
    for path in answer or []:
        items = list(path.get("items") or [])
        row = {"items": items, "count": path.get("count")}
        row.update({f"step_{i + 1}": item for i, item in enumerate(items[:7])})
        rows.append(row)
    return rows


def _retention(answer: Any, context: Answer) -> Rows:
    """Umami 3 labels cohorts with local dates; Umami 2 with the UTC instant of local midnight."""
    rows = []
    for item in answer or []:
        date = str(item.get("date") or "")
        if date.endswith("Z"):
            date = pendulum.parse(date).in_tz(context.timezone).date().isoformat()  # type: ignore[union-attr]
        rows.append(
            {
                "date": date[:10],
                "day_number": item.get("day"),
                "visitors": item.get("visitors"),
                "return_visitors": item.get("returnVisitors"),
                "percentage": item.get("percentage"),
            }
        )
    return rows


BREAKDOWN_METRICS = ("views", "visitors", "visits", "bounces", "totaltime")


def _breakdown_rows(answer: Any, context: Answer) -> Rows:
    """Each row: the metrics plus the values of the report's fields, which become the `dimensions` key."""
    rows = []
    for item in answer or []:
        dimensions = {v3_words(FIELD_NAMES, k): v for k, v in item.items() if k not in BREAKDOWN_METRICS}
        rows.append({"dimensions": dimensions, **{key: item.get(key) for key in BREAKDOWN_METRICS}})
    return rows


def _goal_rows(answer: Any, context: Answer) -> Rows:
    if isinstance(answer, dict):  # Umami 3: one goal per request, {num, total}
        return [
            {
                "goal_type": v3_words(STEP_TYPES, context.parameters.get("type")) or "",
                "goal_value": str(context.parameters.get("value") or ""),
                "result": answer.get("num"),
                "total": answer.get("total"),
                **context.call.row,
            }
        ]
    return [  # Umami 2: [{type, value, goal, result}]
        {
            "goal_type": v3_words(STEP_TYPES, g.get("type")),
            "goal_value": str(g.get("value")),
            "goal": g.get("goal"),
            "result": g.get("result"),
        }
        for g in answer or []
    ]


def _funnel_rows(answer: Any, context: Answer) -> Rows:
    return [
        {
            "step": index,
            "step_type": v3_words(STEP_TYPES, item.get("type")),
            "step_value": item.get("value"),
            **{key: item.get(key) for key in ("visitors", "previous", "dropped", "dropoff", "remaining")},
        }
        for index, item in enumerate(answer or [], start=1)
    ]


def _attribution_rows(answer: Any, context: Answer) -> Rows:
    """`{channel: [{name, value}], total: {visitors, visits, pageviews}}` → one row per (channel, name). Umami 2
    answers revenue (as text) when the report has a currency, Umami 3 always sessions."""
    money = "steps" in context.parameters and bool(context.parameters.get("currency"))
    rows = []
    for channel, items in (answer or {}).items():
        if isinstance(items, dict):
            rows += [{"channel": channel, "label": name, "value": value} for name, value in items.items()]
            continue
        for item in items:
            value = item.get("value")
            rows.append(
                {"channel": channel, "label": item.get("name") or "", "value": None if money else value}
                | ({"revenue": value} if money else {})
            )
    return rows


def _performance(answer: Any, context: Answer) -> Rows:
    """Umami 3.1: `chart` [{t, p50, p75, p95}] and the breakdowns [{name, p50, p75, p95, count}] of one vital,
    `summary` {vital: {p50, p75, p95}, count}."""
    answer = answer or {}
    metric = context.parameters.get("metric") or "lcp"
    rows: Rows = []
    for section, items in answer.items():
        if section == "summary" and isinstance(items, dict):
            for vital, spread in items.items():
                if isinstance(spread, dict):
                    rows.append(
                        {"section": section, "label": vital, "metric": vital, vital: spread.get("p75"), **spread}
                        | {"count": items.get("count")}
                    )
        elif isinstance(items, list):
            for item in items:
                label = item.get("name") if "name" in item else item.get("t")
                values = {k: v for k, v in item.items() if k not in ("name", "t")}
                rows.append(
                    {"section": section, "label": "" if label is None else str(label), "metric": metric, **values}
                )
    return rows


FLATTENERS: dict[str, Callable[[Any, Answer], Rows]] = {
    "utm": _utm,
    "revenue": _revenue,
    "journey": _journey_rows,
    "retention": _retention,
    "breakdown": _breakdown_rows,
    "goal": _goal_rows,
    "funnel": _funnel_rows,
    "attribution": _attribution_rows,
    "performance": _performance,
}


def flatten(report: ReportType, answer: Any, call: Call, timezone: str = "UTC") -> Rows:
    rows = FLATTENERS[report.name](answer, Answer(call, timezone))
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


def check_declared(declared: list[dict[str, Any]], version: ApiVersion) -> None:
    """Every declared report translated for `version`, before any report request: a refusal is a ConfigError."""
    for entry in declared:
        kind = report_type(entry["type"])
        assert kind is not None
        calls(kind, version, entry["name"], entry["parameters"])
