"""Every aggregate Umami answers, computed from (session, event) pairs, in the shape of the version asked.

The counting rules are the ones the real servers showed in tests/umami/recordings (seeded with known traffic):
`stats` counts pageviews only, a visit is a session's activity within one visit id, page-like metrics count
distinct sessions, `sessions/stats` counts every event as a pageview. Where 2.20 and 3.1 differ (number vs string
values, empty rows, zero rows, key names), the `version` argument picks.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from decimal import Decimal
from typing import Any
from urllib.parse import parse_qsl
from zoneinfo import ZoneInfo

from .traffic import CHANNELS, CLICK_IDS, UTM_KEYS, Event, Session, channel_of, iso

Pairs = list[tuple[Session, Event]]
VITALS = ("lcp", "inp", "cls", "fcp", "ttfb")
# Query and report filter names → how to read them; Umami 2 spells two of them differently.
FILTER_ALIASES = {"url": "path", "host": "hostname"}
SESSION_FIELDS = ("browser", "os", "device", "screen", "language", "country", "region", "city")


EVENT_FIELDS = {
    "path": "path",
    "referrer": "referrer_domain",
    "title": "title",
    "query": "query",
    "hostname": "hostname",
    "tag": "tag",
    "event": "name",
}


def field_value(session: Session, event: Event, name: str) -> str | None:
    """A filter's or a breakdown field's value for one event."""
    name = FILTER_ALIASES.get(name, name)
    if name in SESSION_FIELDS:
        value = getattr(session, name)
    elif name in EVENT_FIELDS:
        value = getattr(event, EVENT_FIELDS[name])
    else:
        return None
    return value if value is None else str(value)


def apply_filters(pairs: Pairs, filters: Mapping[str, Any]) -> Pairs:
    """Equality filters (`?os=Windows 10`, a report's `filters`); a session filter keeps the session's events."""
    wanted = {name: str(value) for name, value in filters.items() if value not in (None, "")}
    if not wanted:
        return pairs
    return [(s, e) for s, e in pairs if all(field_value(s, e, name) == value for name, value in wanted.items())]


def views(pairs: Pairs) -> Pairs:
    return [(s, e) for s, e in pairs if e.is_view]


def visits_of(pairs: Iterable[tuple[Session, Event]]) -> dict[str, list[Event]]:
    visits: dict[str, list[Event]] = defaultdict(list)
    for _, event in pairs:
        visits[event.visit_id].append(event)
    return visits


def spent(events: Sequence[Event]) -> int:
    return int(max(e.created for e in events) - min(e.created for e in events))


def stats_of(pairs: Pairs) -> dict[str, int]:
    """`stats`: pageviews only, bounces are one-pageview visits, totaltime the seconds between a visit's pages."""
    seen = views(pairs)
    visits = visits_of(seen)
    return {
        "pageviews": len(seen),
        "visitors": len({s.id for s, _ in seen}),
        "visits": len(visits),
        "bounces": sum(1 for events in visits.values() if len(events) == 1),
        "totaltime": sum(spent(events) for events in visits.values()),
    }


def stats_answer(version: str, now: dict[str, int], before: dict[str, int]) -> dict[str, Any]:
    if version == "2":
        return {key: {"value": value, "prev": before[key]} for key, value in now.items()}
    return {**now, "comparison": before}


def compare_range(begin: float, end: float, compare: str | None) -> tuple[float, float]:
    """The period `compare` means: `yoy` a year back, else the previous period, shifted by whole minutes as Umami
    does (a 3-day range ending at .999 moves back 4319 minutes)."""
    if compare == "yoy":
        start = dt.datetime.fromtimestamp(begin, dt.UTC)
        stop = dt.datetime.fromtimestamp(end, dt.UTC)
        return start.replace(year=start.year - 1).timestamp(), stop.replace(year=stop.year - 1).timestamp()
    minutes = int((end - begin) // 60)
    return begin - minutes * 60, end - minutes * 60


def label(seconds: float, zone: ZoneInfo, unit: str) -> str:
    local = dt.datetime.fromtimestamp(seconds, zone)
    formats = {
        "minute": "%Y-%m-%d %H:%M:00",
        "hour": "%Y-%m-%d %H:00:00",
        "day": "%Y-%m-%d 00:00:00",
        "month": "%Y-%m-01 00:00:00",
        "year": "%Y-01-01 00:00:00",
    }
    return local.strftime(formats[unit])


def iso_label(text: str, zone: ZoneInfo) -> str:
    """Umami 3 without `timezone` labels buckets as UTC instants: "2026-12-01T00:00:00Z"."""
    local = dt.datetime.strptime(text, "%Y-%m-%d %H:%M:%S").replace(tzinfo=zone)
    return local.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def series(pairs: Pairs, zone: ZoneInfo, unit: str) -> dict[str, Any]:
    buckets: dict[str, Pairs] = defaultdict(list)
    for session, event in views(pairs):
        buckets[label(event.created, zone, unit)].append((session, event))
    labels = sorted(buckets)
    return {
        "pageviews": [{"x": x, "y": len(buckets[x])} for x in labels],
        "sessions": [{"x": x, "y": len({s.id for s, _ in buckets[x]})} for x in labels],
    }


def amount(value: float | None) -> str | None:
    """A revenue sum as Umami's database prints a decimal: "9", "12.5"."""
    if value is None:
        return None
    text = format(Decimal(str(round(value, 4))).normalize(), "f")
    return "0" if text in ("-0", "") else text


# -- metrics --------------------------------------------------------------------------------------------------
def metric_values(version: str, metric: str, pairs: Pairs) -> dict[str, int]:
    """x → y for one metric type (Umami 3 names; Umami 2's url/host arrive mapped)."""
    if metric == "event":
        return dict(Counter(e.name for _, e in pairs if not e.is_view))
    seen = views(pairs)
    counted: dict[str, set[str]] = defaultdict(set)
    if metric in ("entry", "exit"):
        for events in visits_of(seen).values():
            ordered = sorted(events, key=lambda e: e.created)
            counted[(ordered[0] if metric == "entry" else ordered[-1]).path].add(events[0].session_id)
        return {k: len(v) for k, v in counted.items()}
    if metric == "channel":
        for session, event in seen:
            counted[channel_of(event)].add(session.id)
        found = {k: len(v) for k, v in counted.items() if k}
        if version == "2":  # every channel, zeros included
            return {name: found.get(name, 0) for name in CHANNELS}
        return {k: v for k, v in found.items() if k != "direct"}
    for session, event in seen:
        value: str | None
        if metric.startswith("utm"):
            value = event.utm().get("utm_" + metric[3:].lower())
        elif metric == "domain":
            value = event.referrer_domain or None
        elif metric == "language":
            value = (session.language or "").split("-")[0].lower() or None
        elif metric == "query":
            value = event.query if event.query or version == "2" else None  # Umami 2 counts pages without one
        elif metric in ("referrer", "tag"):
            value = field_value(session, event, metric) or None
        else:
            value = field_value(session, event, metric)
        if value is not None:
            counted[value].add(session.id)
    return {k: len(v) for k, v in counted.items()}


def ranked(values: Mapping[str, int]) -> list[dict[str, Any]]:
    return [{"x": x, "y": y} for x, y in sorted(values.items(), key=lambda item: (-item[1], item[0]))]


def expanded_metrics(metric: str, pairs: Pairs) -> list[dict[str, Any]]:
    """Umami 3's `metrics/expanded`: per value, pageviews and time as strings, visitors/visits/bounces as numbers;
    a bounce is a visit with one pageview of that value."""
    groups: dict[str, dict[str, list[Event]]] = defaultdict(lambda: defaultdict(list))
    for session, event in views(pairs):
        value = field_value(session, event, metric)
        if value is not None:
            groups[value][event.visit_id].append(event)
    rows = []
    for name, visits in groups.items():
        events = [e for group in visits.values() for e in group]
        rows.append(
            {
                "name": name,
                "pageviews": str(len(events)),
                "visitors": len({e.session_id for e in events}),
                "visits": len(visits),
                "bounces": sum(1 for group in visits.values() if len(group) == 1),
                "totaltime": str(sum(spent(group) for group in visits.values())),
            }
        )
    return sorted(rows, key=lambda r: (-r["visitors"], -r["visits"], r["name"]))


# -- sessions and events --------------------------------------------------------------------------------------
def session_rows(version: str, pairs: Pairs) -> list[dict[str, Any]]:
    """The session list: every session with an event in the range, newest first; `createdAt` is the time of its
    latest event in the range (both versions), not the session's own creation time."""
    by_session: dict[str, list[Event]] = defaultdict(list)
    sessions: dict[str, Session] = {}
    for session, event in pairs:
        by_session[session.id].append(event)
        sessions[session.id] = session
    rows = []
    for session_id, events in by_session.items():
        s = sessions[session_id]
        row: dict[str, Any] = {"id": s.id, "websiteId": s.website_id}
        if version == "3":
            row["hostname"] = s.hostname
        row |= {
            "browser": s.browser,
            "os": s.os,
            "device": s.device,
            "screen": s.screen,
            "language": s.language,
            "country": s.country,
            "region": s.region,
            "city": s.city,
            "firstAt": iso(min(e.created for e in events)),
            "lastAt": iso(max(e.created for e in events)),
            "visits": len({e.visit_id for e in events}),
            "views": sum(1 for e in events if e.is_view),
        }
        if version == "3":
            row["events"] = sum(1 for e in events if not e.is_view)
        row["createdAt"] = row["lastAt"]
        rows.append(row)
    return sorted(rows, key=lambda r: (r["createdAt"], r["id"]), reverse=True)


def referrer_fields(event: Event) -> dict[str, Any]:
    """No referrer: nulls; a referrer without path or query: ''."""
    if not event.referrer_domain:
        return {"referrerPath": None, "referrerQuery": None, "referrerDomain": None}
    return {
        "referrerPath": event.referrer_path,
        "referrerQuery": event.referrer_query,
        "referrerDomain": event.referrer_domain,
    }


def event_rows(version: str, pairs: Pairs) -> list[dict[str, Any]]:
    rows = []
    for session, event in pairs:
        row: dict[str, Any] = {
            "id": event.id,
            "websiteId": session.website_id,
            "sessionId": session.id,
            "createdAt": iso(event.created),
        }
        if version == "3":
            row["hostname"] = event.hostname
        row |= {"urlPath": event.path, "urlQuery": event.query, **referrer_fields(event)}
        if version == "3":
            row |= {
                "country": session.country,
                "city": session.city,
                "device": session.device,
                "os": session.os,
                "browser": session.browser,
            }
        row |= {"pageTitle": event.title, "eventType": event.event_type, "eventName": event.name or None}
        if version == "3":
            row["hasData"] = bool(event.data)
        rows.append(row)
    return sorted(rows, key=lambda r: (r["createdAt"], r["id"]), reverse=True)


def session_detail(session: Session) -> dict[str, Any]:
    """`sessions/{id}`: the same keys in both versions; counts of views, events and time as strings."""
    events = session.events
    seen = [e for e in events if e.is_view]
    return {
        "id": session.id,
        "distinctId": session.distinct_id,
        "websiteId": session.website_id,
        "browser": session.browser,
        "os": session.os,
        "device": session.device,
        "screen": session.screen,
        "language": session.language,
        "country": session.country,
        "region": session.region,
        "city": session.city,
        "firstAt": iso(events[0].created),
        "lastAt": iso(events[-1].created),
        "visits": len({e.visit_id for e in events}),
        "views": str(len(seen)),
        "events": str(len(events) - len(seen)),
        "totaltime": str(sum(spent(group) for group in visits_of((session, e) for e in seen).values())),
    }


def activity_rows(version: str, session: Session, events: Iterable[Event]) -> list[dict[str, Any]]:
    """`sessions/{id}/activity`, newest first: Umami 2 sends whole event rows, Umami 3 a slim line each."""
    rows = []
    for event in sorted(events, key=lambda e: e.created, reverse=True):
        if version == "3":
            rows.append(
                {
                    "createdAt": iso(event.created),
                    "urlPath": event.path,
                    "urlQuery": event.query,
                    "referrerDomain": event.referrer_domain or None,
                    "eventId": event.id,
                    "eventType": event.event_type,
                    "eventName": event.name or None,
                    "visitId": event.visit_id,
                    "hostname": event.hostname,
                    "hasData": bool(event.data),
                }
            )
            continue
        utm = event.utm()
        clicks = dict(parse_qsl(event.query))
        rows.append(
            {
                "id": event.id,
                "websiteId": session.website_id,
                "sessionId": session.id,
                "visitId": event.visit_id,
                "createdAt": iso(event.created),
                "urlPath": event.path,
                "urlQuery": event.query,
                **{f"utm{key[4:].title()}": utm.get(key) for key in UTM_KEYS},
                **referrer_fields(event),
                "pageTitle": event.title,
                **{name: clicks.get(name) for name in ("gclid", "fbclid", "msclkid", "ttclid")},
                "lifatid": clicks.get("li_fat_id"),
                "twclid": clicks.get("twclid"),
                "eventType": event.event_type,
                "eventName": event.name or None,
                "tag": event.tag or None,
                "hostname": event.hostname,
            }
        )
    return rows


def session_stats(pairs: Pairs) -> dict[str, Any]:
    """`sessions/stats`: `{x: {value}}` in both versions; its pageviews count every event."""
    return {
        "pageviews": {"value": len(pairs)},
        "visitors": {"value": len({s.id for s, _ in pairs})},
        "visits": {"value": len({e.visit_id for _, e in pairs})},
        "countries": {"value": len({s.country for s, _ in pairs if s.country})},
        "events": {"value": sum(1 for _, e in pairs if not e.is_view)},
    }


def weekly(pairs: Pairs, zone: ZoneInfo) -> list[list[int]]:
    """Sessions per weekday (Sunday first) and hour, in the timezone."""
    cells: dict[tuple[int, int], set[str]] = defaultdict(set)
    for session, event in pairs:
        local = dt.datetime.fromtimestamp(event.created, zone)
        cells[((local.weekday() + 1) % 7, local.hour)].add(session.id)
    return [[len(cells.get((day, hour), ())) for hour in range(24)] for day in range(7)]


def event_series(pairs: Pairs, zone: ZoneInfo, unit: str) -> list[dict[str, Any]]:
    counted = Counter((label(e.created, zone, unit), e.name) for _, e in pairs if not e.is_view)
    return [{"x": name, "t": t, "y": n} for (t, name), n in sorted(counted.items())]


def event_stats(pairs: Pairs, before: Pairs) -> dict[str, Any]:
    def numbers(found: Pairs) -> dict[str, int]:
        custom = [(s, e) for s, e in found if not e.is_view]
        return {
            "events": len(custom),
            "visitors": len({s.id for s, _ in custom}),
            "visits": len({e.visit_id for _, e in custom}),
            "uniqueEvents": len({e.name for _, e in custom}),
        }

    return {"data": {**numbers(pairs), "comparison": numbers(before)}}


# -- event data -----------------------------------------------------------------------------------------------
def data_type(value: Any) -> int:
    return 2 if isinstance(value, (int, float)) and not isinstance(value, bool) else 1


def data_records(pairs: Pairs) -> list[tuple[Event, str, Any]]:
    return [(e, key, value) for _, e in pairs if not e.is_view for key, value in e.data]


def event_data_events(pairs: Pairs, event_name: str | None) -> list[dict[str, Any]]:
    """Without `event`: properties per event name; with it, their values (numbers as decimal(19,4) text)."""
    records = data_records(pairs)
    if event_name is None:
        counted = Counter((e.name, key, data_type(v)) for e, key, v in records)
        return [
            {"eventName": n, "propertyName": k, "dataType": t, "total": c} for (n, k, t), c in sorted(counted.items())
        ]
    values = Counter(
        (key, data_type(v), f"{float(v):.4f}" if data_type(v) == 2 else str(v))
        for e, key, v in records
        if e.name == event_name
    )
    return [
        {"eventName": event_name, "propertyName": k, "dataType": t, "propertyValue": v, "total": c}
        for (k, t, v), c in sorted(values.items(), key=lambda item: (item[0][0], -item[1], item[0][2]))
    ]


def data_text(value: Any) -> str:
    return amount(float(value)) or "0" if data_type(value) == 2 else str(value)


def event_data_fields(pairs: Pairs) -> list[dict[str, Any]]:
    counted = Counter((key, data_type(v), data_text(v)) for _, key, v in data_records(pairs))
    return [
        {"propertyName": k, "dataType": t, "value": v, "total": c}
        for (k, t, v), c in sorted(counted.items(), key=lambda item: (-item[0][1], item[0][0], item[0][2]))
    ]


def event_data_properties(pairs: Pairs) -> list[dict[str, Any]]:
    counted = Counter((e.name, key) for e, key, _ in data_records(pairs))
    return [
        {"eventName": n, "propertyName": k, "total": c}
        for (n, k), c in sorted(counted.items(), key=lambda item: (-item[1], item[0][0] != "", item[0][1]))
    ]


def event_data_stats(pairs: Pairs) -> dict[str, Any]:
    records = data_records(pairs)
    return {
        "events": len({e.id for e, _, _ in records}),
        "properties": len({key for _, key, _ in records}),
        "records": str(len(records)),
    }


def event_data_values(pairs: Pairs, event_name: str | None, property_name: str | None) -> list[dict[str, Any]]:
    counted = Counter(
        data_text(v)
        for e, key, v in data_records(pairs)
        if key == property_name and (event_name is None or e.name == event_name)
    )
    return [{"value": v, "total": c} for v, c in sorted(counted.items(), key=lambda item: (-item[1], item[0]))]


# -- reports --------------------------------------------------------------------------------------------------
def matches(event: Event, kind: str, value: Any) -> bool:
    """A funnel step, goal or conversion: `url` (Umami 2) or `path` (Umami 3) a pageview, `event` a custom event."""
    if kind in ("url", "path"):
        return event.is_view and event.path == value
    return not event.is_view and event.name == value


def by_session(pairs: Pairs) -> dict[str, list[Event]]:
    grouped: dict[str, list[Event]] = defaultdict(list)
    for _, event in pairs:
        grouped[event.session_id].append(event)
    return grouped


def funnel(pairs: Pairs, steps: Sequence[Mapping[str, Any]], window_minutes: float) -> list[dict[str, Any]]:
    reached = [0] * len(steps)
    for events in by_session(pairs).values():
        index, started = 0, 0.0
        for event in sorted(events, key=lambda e: e.created):
            if index == len(steps):
                break
            if index and event.created - started > window_minutes * 60:
                break
            if matches(event, steps[index]["type"], steps[index]["value"]):
                started = event.created if index == 0 else started
                reached[index] += 1
                index += 1
    rows = []
    for i, step in enumerate(steps):
        previous = reached[i - 1] if i else 0
        dropped = previous - reached[i] if i else 0
        rows.append(
            {
                "type": step["type"],
                "value": step["value"],
                "visitors": reached[i],
                "previous": previous,
                "dropped": dropped,
                "dropoff": (dropped / previous if previous else 0) if i else None,
                "remaining": reached[i] / reached[0] if reached[0] else 0,
            }
        )
    return rows


def retention(version: str, pairs: Pairs, begin: float, end: float, zone: ZoneInfo) -> list[dict[str, Any]]:
    """Cohorts by the day a visitor's session was stored: Umami 2 stores back-dated sessions at arrival time, so
    back-dated traffic has no cohort there."""

    def day_of(seconds: float) -> dt.date:
        return dt.datetime.fromtimestamp(seconds, zone).date()

    cohort_of: dict[str, dt.date] = {}
    seen: dict[str, set[dt.date]] = defaultdict(set)
    for session, event in views(pairs):
        if begin <= session.stored_at <= end:
            first = day_of(session.stored_at)
            cohort_of[session.visitor] = min(cohort_of.get(session.visitor, first), first)
        seen[session.visitor].add(day_of(event.created))
    cohorts: dict[dt.date, list[set[dt.date]]] = defaultdict(list)
    for visitor, cohort in cohort_of.items():
        cohorts[cohort].append(seen[visitor] | {cohort})
    rows = []
    for cohort, members in sorted(cohorts.items()):
        last = max(d for days in members for d in days)
        start = dt.datetime(cohort.year, cohort.month, cohort.day, tzinfo=zone)
        date = (
            start.strftime("%Y-%m-%d %H:%M:%S")
            if version == "3"
            else start.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        )
        for offset in range((last - cohort).days + 1):
            returned = sum(1 for days in members if cohort + dt.timedelta(days=offset) in days)
            if offset and not returned:
                continue
            rows.append(
                {
                    "date": date,
                    "day": offset,
                    "visitors": len(members),
                    "returnVisitors": returned,
                    "percentage": round(returned / len(members) * 100, 2),
                }
            )
    return rows


def utm_report(version: str, pairs: Pairs) -> Any:
    """Umami 2: the raw query strings that carry UTM parameters and their pageviews; Umami 3: per parameter."""
    seen = views(pairs)
    if version == "2":
        counted = Counter(e.query for _, e in seen if "utm_" in e.query)
        return [{"url_query": q, "num": n} for q, n in sorted(counted.items(), key=lambda i: (-i[1], i[0]))]
    answer: dict[str, Any] = {}
    for key in ("utm_source", "utm_medium", "utm_campaign", "utm_term", "utm_content"):
        counted = Counter(value for _, e in seen if (value := e.utm().get(key)))
        answer[key] = [{"utm": v, "views": n} for v, n in sorted(counted.items(), key=lambda i: (-i[1], i[0]))]
    return answer


def journey(pairs: Pairs, steps: int, start_step: str | None, end_step: str | None) -> list[dict[str, Any]]:
    """Per visit: its first `steps` events (page paths, event names), then a null end; a repeat of the same step
    counts once."""
    paths: Counter[tuple[str | None, ...]] = Counter()
    order: dict[tuple[str | None, ...], int] = {}
    for events in visits_of(pairs).values():
        names: list[str | None] = [e.path if e.is_view else e.name for e in sorted(events, key=lambda e: e.created)]
        names = names[:steps] + [None] * (steps + 1 - min(len(names), steps))
        items = tuple(name for i, name in enumerate(names) if i == 0 or name != names[i - 1])
        if start_step and items[0] != start_step:
            continue
        if end_step and end_step not in items:
            continue
        paths[items] += 1
        order.setdefault(items, len(order))
    return [
        {"items": list(items), "count": n} for items, n in sorted(paths.items(), key=lambda i: (-i[1], order[i[0]]))
    ]


def landing(events: Sequence[Event]) -> Event | None:
    return next((e for e in sorted(events, key=lambda e: e.created) if e.is_view), None)


def revenue(
    version: str, pairs: Pairs, before: Pairs, zone: ZoneInfo, unit: str, currency: str | None
) -> dict[str, Any]:
    sessions = by_session(pairs)

    def sales(found: Pairs, in_currency: str | None) -> list[tuple[Session, Event, float, str]]:
        out = []
        for session, event in found:
            data = dict(event.data)
            if event.is_view or "revenue" not in data:
                continue
            code = str(data.get("currency") or "")
            if in_currency is None or code == in_currency:
                out.append((session, event, float(data["revenue"]), code))
        return out

    def total(found: list[tuple[Session, Event, float, str]]) -> dict[str, Any]:
        return {
            "sum": amount(sum(a for _, _, a, _ in found)) if found else None,
            "count": len(found),
            "unique_count": len({s.id for s, _, _, _ in found}),
        }

    chosen = sales(pairs, currency)
    chart: dict[tuple[str, str], list[float]] = defaultdict(list)
    countries: dict[str, float] = defaultdict(float)
    for session, event, value, _ in chosen:
        chart[(label(event.created, zone, unit), event.name)].append(value)
        countries[session.country or ""] += value
    answer: dict[str, Any] = {
        "chart": [
            {"x": name, "t": t, "y": amount(sum(values)), **({"count": len(values)} if version == "3" else {})}
            for (t, name), values in sorted(chart.items())
        ],
        "country": [{"name": name, "value": amount(value)} for name, value in sorted(countries.items())],
    }
    if version == "2":
        totals = total(chosen)
        answer["total"] = {**totals, "sum": totals["sum"] or "0"}
        by_currency: dict[str, list[tuple[Session, Event, float, str]]] = defaultdict(list)
        for sale in sales(pairs, None):
            by_currency[sale[3]].append(sale)
        answer["table"] = [{**total(rows), "currency": code} for code, rows in sorted(by_currency.items())]
        return answer

    def summary(found: Pairs, chosen: list[tuple[Session, Event, float, str]]) -> dict[str, Any]:
        numbers = total(chosen)
        visitors = len({s.id for s, _ in found})
        money = sum(a for _, _, a, _ in chosen)
        return {
            **numbers,
            "total_sessions": visitors,
            "average": money / len(chosen) if chosen else 0,
            "arpu": round(money / visitors, 2) if visitors else 0,
        }

    answer["total"] = {**summary(pairs, chosen), "comparison": summary(before, sales(before, currency))}
    regions: dict[tuple[str, str | None], float] = defaultdict(float)
    referrers: dict[str | None, float] = defaultdict(float)
    channels: dict[str, float] = defaultdict(float)
    for session, _, value, _ in chosen:
        regions[(session.country or "", session.region)] += value
        first = landing(sessions[session.id])
        referrers[first.referrer_domain or None if first else None] += value
        channel = channel_of(first) if first else ""
        channels[channel if channel not in ("", "direct") else "Unknown"] += value  # Umami 3.1 knows no `direct`
    answer["region"] = [
        {"country": c, "name": r, "value": amount(v)} for (c, r), v in sorted(regions.items(), key=lambda i: i[0][0])
    ]
    answer["referrer"] = [
        {"name": n, "value": amount(v)}
        for n, v in sorted(referrers.items(), key=lambda i: (-i[1], i[0] is None, i[0] or ""))
    ]
    answer["channel"] = [{"name": n, "value": amount(v)} for n, v in sorted(channels.items())]
    return answer


def goals_v2(pairs: Pairs, goals: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Umami 2's `goals`: a path goal counts every event on the path (pageviews and custom events), an event goal
    its events, an event-data goal sums, counts or averages a property."""
    rows = []
    for goal in goals:
        kind, value = goal.get("type"), goal.get("value")
        if kind == "event-data":
            numbers = [
                float(v)
                for _, e in pairs
                if e.name == value
                for key, v in e.data
                if key == goal.get("property") and data_type(v) == 2
            ]
            result: float = aggregate(numbers, str(goal.get("operator") or "count"))
        elif kind == "url":
            result = sum(1 for _, e in pairs if e.path == value)
        else:
            result = sum(1 for _, e in pairs if not e.is_view and e.name == value)
        target = float(goal.get("goal") or 0)
        rows.append(
            {"type": kind, "value": value, "goal": int(target) if target.is_integer() else target, "result": result}
        )
    return rows


def aggregate(numbers: list[float], operator: str) -> float:
    if operator == "sum":
        return sum(numbers)
    if operator == "average":
        return sum(numbers) / len(numbers) if numbers else 0
    return len(numbers)


def goal_v3(pairs: Pairs, parameters: Mapping[str, Any]) -> dict[str, Any]:
    """Umami 3's `goal`: sessions that reached it (`num`) of all sessions in the range (`total`)."""
    kind, value, prop = parameters.get("type"), parameters.get("value"), parameters.get("property")
    if kind == "event" and prop:
        numbers = [
            float(v) for _, e in pairs if e.name == value for key, v in e.data if key == prop and data_type(v) == 2
        ]
        num: float = aggregate(numbers, str(parameters.get("operator") or "count"))
    else:
        num = len({s.id for s, e in pairs if matches(e, str(kind), value)})
    return {"num": num, "total": len({s.id for s, _ in pairs})}


def attribution(version: str, pairs: Pairs, parameters: Mapping[str, Any]) -> dict[str, Any]:
    """Who brought the sessions that converted: the first (or last) page before the conversion, per referrer, ad
    click id and UTM parameter. Umami 2 keeps '' names and sends values as text (revenue when `currency` is given);
    Umami 3 leaves '' out and counts sessions."""
    if version == "2":
        step = (parameters.get("steps") or [{}])[0]
        kind, value, first = step.get("type"), step.get("value"), parameters.get("model") == "firstClick"
    else:
        kind, value, first = parameters.get("type"), parameters.get("step"), parameters.get("model") == "first-click"
    currency = parameters.get("currency")
    channels: dict[str, dict[str, float]] = {key: defaultdict(float) for key in ("referrer", "paidAds", *UTM_KEYS)}
    goal_events = []
    for events in by_session(pairs).values():
        ordered = sorted(events, key=lambda e: e.created)
        hits = [e for e in ordered if matches(e, str(kind), value)]
        if not hits:
            continue
        goal_events.extend(hits)
        before = [e for e in ordered if e.is_view and e.created <= hits[-1].created]
        touches = before if first else [e for e in before if e.referrer_domain or e.query] or before
        if not touches:
            continue
        touch = touches[0] if first else touches[-1]
        worth = (
            sum(float(dict(e.data).get("revenue", 0)) for e in hits if dict(e.data).get("currency") == currency)
            if currency and version == "2"
            else 1
        )
        clicks = dict(parse_qsl(touch.query))
        utm = touch.utm()
        names = {
            "referrer": touch.referrer_domain,
            "paidAds": next((ad for param, ad in CLICK_IDS.items() if param in clicks), ""),
            **{key: utm.get(key, "") for key in UTM_KEYS},
        }
        for channel, name in names.items():
            if name or version == "2":
                channels[channel][name] += worth
    answer: dict[str, Any] = {}
    for channel, values in channels.items():
        text = version == "2" and currency
        answer[channel] = [
            {"name": n, "value": amount(v) if text else int(v)}
            for n, v in sorted(values.items(), key=lambda i: (-i[1], i[0]))
        ]
    answer["total"] = {
        "pageviews": len(goal_events),
        "visitors": len({e.session_id for e in goal_events}),
        "visits": len({e.visit_id for e in goal_events}),
    }
    return answer


def breakdown(pairs: Pairs, fields: Sequence[str]) -> list[dict[str, Any]]:
    """Umami 2's `insights` and Umami 3's `breakdown`: pageview numbers per combination of field values; both send
    views and totaltime as text, visitors, visits and bounces as numbers."""
    groups: dict[tuple[str | None, ...], Pairs] = defaultdict(list)
    for session, event in views(pairs):
        groups[tuple(field_value(session, event, f) for f in fields)].append((session, event))
    rows = []
    for values, members in groups.items():
        numbers = stats_of(members)
        rows.append(
            {
                "views": str(numbers["pageviews"]),
                "visitors": numbers["visitors"],
                "visits": numbers["visits"],
                "bounces": numbers["bounces"],
                "totaltime": str(numbers["totaltime"]),
                **dict(zip(fields, values, strict=True)),
            }
        )
    return sorted(rows, key=lambda r: (-int(r["views"]), [str(r[f]) for f in fields]))


def percentile(values: Sequence[float], q: float) -> float:
    """`percentile_cont`: linear between the two nearest ranks."""
    if not values:
        return 0
    ordered = sorted(values)
    position = (len(ordered) - 1) * q
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def performance(pairs: Pairs, zone: ZoneInfo, unit: str, metric: str) -> dict[str, Any]:
    """Umami 3.1's web vitals: the chart and the breakdowns give one vital's percentiles, the summary all five."""
    measured = [(s, e) for s, e in views(pairs) if e.vitals]
    index = VITALS.index(metric)

    def spread(values: Sequence[float]) -> dict[str, float]:
        return {"p50": percentile(values, 0.5), "p75": percentile(values, 0.75), "p95": percentile(values, 0.95)}

    def grouped(key: Callable[[Session, Event], str | None], name: str) -> list[dict[str, Any]]:
        groups: dict[str | None, list[float]] = defaultdict(list)
        for session, event in measured:
            groups[key(session, event)].append(event.vitals[index])
        rows = [{name: group, **spread(values), "count": len(values)} for group, values in groups.items()]
        return sorted(rows, key=lambda r: (-r["p75"], str(r[name])))

    chart = [
        {k: v for k, v in row.items() if k != "count"}
        for row in sorted(grouped(lambda s, e: label(e.created, zone, unit), "t"), key=lambda r: r["t"])
    ]
    return {
        "chart": chart,
        "summary": {
            **{vital: spread([e.vitals[i] for _, e in measured]) for i, vital in enumerate(VITALS)},
            "count": len(measured),
        },
        "pages": grouped(lambda s, e: e.path, "name"),
        "pageTitles": grouped(lambda s, e: e.title, "name"),
        "devices": grouped(lambda s, e: s.device, "name"),
        "browsers": grouped(lambda s, e: s.browser, "name"),
    }
