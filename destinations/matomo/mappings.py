"""How a table row becomes Matomo hits. A mapping turns one row into raw hits named with Tracking API
parameters; `validation.prepare_hit` then checks and encodes them.

- `default`: one hit per row. Columns named like Tracking API parameters are sent as they are; the friendly
  names in `FRIENDLY_NAMES` are renamed; other columns are not sent (they still make a row distinct).
- `opentracker_sessions`: one Opentracker session row (from `opentracker.sessions`) becomes a Matomo visit.
- `umami_events`: one Umami event row (from `umami.events`) becomes a page view or an event.
- `matomo_actions`: one Matomo action (`matomo.actions` joined to its visit, see `MATOMO_VISIT_COLUMNS`) becomes a
  page view or an event of another tool.
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlsplit

from sources.common.errors import ConfigError

from .settings import DIMENSION_PREFIX, MAX_PAGES_PER_SESSION, TRACKING_PARAMETERS
from .validation import InvalidHit, to_utc_datetime

# Friendly column name -> Tracking API parameter.
FRIENDLY_NAMES: dict[str, str] = {
    "site_id": "idsite",
    "page_url": "url",
    "page_title": "action_name",
    "title": "action_name",
    "visitor_id": "_id",
    "user_id": "uid",
    "timestamp": "cdt",
    "time": "cdt",
    "ip": "cip",
    "user_agent": "ua",
    "language": "lang",
    "referrer": "urlref",
    "resolution": "res",
    "event_category": "e_c",
    "event_action": "e_a",
    "event_name": "e_n",
    "event_value": "e_v",
    "goal_id": "idgoal",
    "order_id": "ec_id",
    "items": "ec_items",
    "subtotal": "ec_st",
    "tax": "ec_tx",
    "shipping": "ec_sh",
    "discount": "ec_dt",
    "search_keyword": "search",
    "search_category": "search_cat",
    "search_results": "search_count",
    "campaign_name": "_rcn",
    "campaign_keyword": "_rck",
    "content_name": "c_n",
    "content_piece": "c_p",
    "content_target": "c_t",
    "content_interaction": "c_i",
    "visit_custom_variables": "_cvar",
    "page_custom_variables": "cvar",
    "generation_time_ms": "gt_ms",
    "latitude": "lat",
    "longitude": "long",
    "new_visit": "new_visit",
}

Hits = list[dict[str, Any]]


@dataclass(frozen=True)
class RowMapping:
    """`to_hits(row)` → raw hits; `order_columns(columns)` → columns to read the table in (so a visitor's hits
    go out in time order); `key_columns` identify a row across runs (the ledger's hit ids)."""

    name: str
    description: str
    to_hits: Callable[[Mapping[str, Any]], Hits]
    order_columns: Callable[[Iterable[str]], list[str]]
    key_columns: tuple[str, ...] = ()
    required_any: tuple[tuple[str, ...], ...] = field(default_factory=tuple)  # each: one of these columns


def is_parameter(name: str) -> bool:
    return name in TRACKING_PARAMETERS or bool(re.fullmatch(DIMENSION_PREFIX + r"\d+", name))


@functools.lru_cache(maxsize=4096)
def parameter_of(column: str) -> str | None:
    """The Tracking API parameter a column is sent as (None: not sent); a table has few columns, so cached."""
    return column if is_parameter(column) else FRIENDLY_NAMES.get(column)


def default_to_hits(row: Mapping[str, Any]) -> Hits:
    hit: dict[str, Any] = {}
    for column, value in row.items():
        name = parameter_of(column)
        if name is None:
            continue
        if name in hit and column != name:
            continue  # a column with the parameter's own name wins over its friendly alias
        hit[name] = value
    return [hit]


def default_order(columns: Iterable[str]) -> list[str]:
    available = set(columns)
    for name in ("cdt", "timestamp", "time"):
        if name in available:
            return [name]
    return []


def sent_columns(columns: Iterable[str]) -> list[str]:
    """Columns the default mapping sends (for the summary: columns that are not sent are worth a warning)."""
    return [c for c in columns if is_parameter(c) or c in FRIENDLY_NAMES]


# -- Opentracker sessions -------------------------------------------------------------------------------------
# Column names as the Opentracker source writes them; the API's own *_unix_timestamp names are accepted too.
OT_START = ("session_start", "session_start_unix_timestamp")
OT_END = ("session_end", "session_end_unix_timestamp")
OT_FIRST = ("first_session", "first_session_unix_timestamp")
OT_VISITOR = ("use_id", "machine_idx", "visit_id", "session_id")

# Opentracker keeps a browser name with version and an OS name, not the user-agent string: rebuild a typical
# one so Matomo's device detection finds the same browser and OS.
_OS_TOKENS: tuple[tuple[str, str], ...] = (
    (r"windows 11", "Windows NT 10.0; Win64; x64"),
    (r"windows 10", "Windows NT 10.0; Win64; x64"),
    (r"windows 8\.1", "Windows NT 6.3"),
    (r"windows 8", "Windows NT 6.2"),
    (r"windows 7", "Windows NT 6.1"),
    (r"windows vista", "Windows NT 6.0"),
    (r"windows xp", "Windows NT 5.1"),
    (r"windows", "Windows NT 10.0"),
    (r"iphone|ios", "iPhone; CPU iPhone OS 17_5 like Mac OS X"),
    (r"ipad", "iPad; CPU OS 17_5 like Mac OS X"),
    (r"android", "Linux; Android 14"),
    (r"mac os x ([\d.]+)", "Macintosh; Intel Mac OS X {0}"),
    (r"mac", "Macintosh; Intel Mac OS X 10_15_7"),
    (r"linux", "X11; Linux x86_64"),
)


def _os_token(platform: str) -> str:
    lowered = platform.lower()
    for pattern, token in _OS_TOKENS:
        match = re.search(pattern, lowered)
        if match:
            return token.format(*(group.replace(".", "_") for group in match.groups()))
    return "Windows NT 10.0; Win64; x64"


def user_agent(browser: str | None, platform: str | None) -> str | None:
    """A user-agent string for Opentracker's `browser` ("Chrome 15.0.874.120") and `platform` ("Windows 7")."""
    if not browser and not platform:
        return None
    name, _, version = (browser or "").strip().partition(" ")
    version = version.strip() or "1.0"
    system = _os_token(platform or "")
    lowered = name.lower()
    if lowered in ("ie", "msie", "internet"):
        return f"Mozilla/5.0 (compatible; MSIE {version}; {system}; Trident/5.0)"
    if lowered == "firefox":
        return f"Mozilla/5.0 ({system}; rv:{version}) Gecko/20100101 Firefox/{version}"
    if lowered == "safari":
        return f"Mozilla/5.0 ({system}) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/{version} Safari/605.1.15"
    if lowered == "edge":
        return (
            f"Mozilla/5.0 ({system}) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36 "
            f"Edg/{version}"
        )
    if lowered == "opera":
        return (
            f"Mozilla/5.0 ({system}) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36 "
            f"OPR/{version}"
        )
    return f"Mozilla/5.0 ({system}) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/{version} Safari/537.36"


def _first(row: Mapping[str, Any], names: tuple[str, ...]) -> Any:
    for name in names:
        value = row.get(name)
        if value not in (None, ""):
            return value
    return None


def visitor_hex(value: Any) -> str:
    """Matomo's `_id`: 16 hex characters, the same for every session of one Opentracker visitor."""
    return hashlib.sha256(str(value).encode()).hexdigest()[:16]


def campaign(url: str | None) -> tuple[str | None, str | None]:
    """Campaign name and keyword from the entry URL's utm_/pk_/mtm_ parameters."""
    if not url:
        return None, None
    query = {key.lower(): values[0] for key, values in parse_qs(urlsplit(url).query).items() if values}
    name = query.get("mtm_campaign") or query.get("pk_campaign") or query.get("utm_campaign")
    keyword = query.get("mtm_kwd") or query.get("pk_kwd") or query.get("utm_term")
    return name, keyword


def _count(value: Any) -> int:
    try:
        return int(float(str(value)))
    except (TypeError, ValueError):
        return 0


def opentracker_to_hits(row: Mapping[str, Any]) -> Hits:
    """One session → its page views: the entry page at the start (with visitor id, IP, user agent, resolution,
    referrer and campaign, `new_visit=1`), the others spread evenly until the session's end, the last of them
    on the exit page. Opentracker does not record the pages between entry and exit: those views carry the exit
    page's URL."""
    start_value = _first(row, OT_START)
    if start_value is None:
        raise InvalidHit("session has no session_start")
    start = to_utc_datetime(start_value)
    end_value = _first(row, OT_END)
    end = max(to_utc_datetime(end_value), start) if end_value is not None else start
    entry_url = _first(row, ("entry_page", "entry_root_url", "current_page"))
    exit_url = _first(row, ("current_page", "exit_root_url")) or entry_url
    entry_title = _first(row, ("entry_title",))
    exit_title = _first(row, ("current_title", "exit_title")) or entry_title
    pages = max(1, min(MAX_PAGES_PER_SESSION, _count(_first(row, ("pages_viewed", "number_of_pages_viewed")))))
    visitor = _first(row, OT_VISITOR)
    resolution = str(_first(row, ("resolution",)) or "").replace(" ", "") or None
    name, keyword = campaign(entry_url)
    first_seen = _first(row, OT_FIRST)
    country = _first(row, ("country_code",))
    common: dict[str, Any] = {
        "_id": visitor_hex(visitor) if visitor is not None else None,
        "cip": _first(row, ("ip_number",)),
        "ua": _first(row, ("user_agent",)) or user_agent(row.get("browser"), row.get("platform")),
        "res": resolution,
    }
    entry: dict[str, Any] = {
        **common,
        "url": entry_url,
        "action_name": entry_title,
        "cdt": start,
        "new_visit": 1,
        "urlref": _first(row, ("session_referrer", "referrer")),
        "_rcn": name,
        "_rck": keyword,
        "_idvc": _count(row.get("number_visits")) or None,
        "_idts": int(to_utc_datetime(first_seen).timestamp()) if first_seen is not None else None,
        "country": str(country).lower() if country and len(str(country)) == 2 else None,
        "city": _first(row, ("city",)),
        "lat": row.get("latitude"),
        "long": row.get("longitude"),
    }
    hits: Hits = [entry]
    span = (end - start).total_seconds()
    for index in range(1, pages):
        at = start + dt.timedelta(seconds=round(span * index / (pages - 1)))
        hits.append({**common, "url": exit_url, "action_name": exit_title, "cdt": at})
    return hits


def opentracker_order(columns: Iterable[str]) -> list[str]:
    available = set(columns)
    order = [name for name in OT_START if name in available][:1]
    return order + (["session_id"] if "session_id" in available else [])


# -- Umami events ---------------------------------------------------------------------------------------------
def umami_to_hits(row: Mapping[str, Any]) -> Hits:
    """One Umami event row (from `umami.events`) → one hit: a page view (event_type 1), or a custom event
    (event_type 2) as an event with category `umami` and the event's name as its action. Umami keeps browser and
    OS names, not the user-agent string: a typical one is rebuilt. The visitor is Umami's session."""
    created = row.get("created_at")
    if created in (None, ""):
        raise InvalidHit("event has no created_at")
    hostname = str(row.get("hostname") or "").strip()
    path = str(row.get("url_path") or "/")
    query = str(row.get("url_query") or "")
    url = (f"https://{hostname}" if hostname else "") + path + (f"?{query}" if query else "")
    referrer = str(row.get("referrer_domain") or "")
    hit: dict[str, Any] = {
        "url": url,
        "action_name": row.get("page_title") or None,
        "cdt": to_utc_datetime(created),
        "_id": visitor_hex(row["session_id"]) if row.get("session_id") else None,
        "ua": user_agent(row.get("browser"), row.get("os")),
        "urlref": f"https://{referrer}{row.get('referrer_path') or '/'}" if referrer else None,
        "country": str(row.get("country")).lower() if row.get("country") else None,
    }
    if int(row.get("event_type") or 1) == 2:
        hit |= {"e_c": "umami", "e_a": row.get("event_name") or "(unnamed)"}
    return [hit]


def umami_order(columns: Iterable[str]) -> list[str]:
    available = set(columns)
    return [name for name in ("created_at", "id") if name in available]


# -- Matomo actions -------------------------------------------------------------------------------------------
# Visit-level columns a `matomo_actions` row carries beside the action's own (`matomo.visits` joined on the visit:
# the view `migrate.matomo_rows` of `pipelines/migrate.py`); Matomo keeps them once per visit, a hit needs them all.
MATOMO_VISIT_COLUMNS = (
    "visitor_id",
    "visit_ip",
    "browser_name",
    "browser_version",
    "operating_system_name",
    "operating_system_version",
    "referrer_url",
    "resolution",
    "language_code",
    "country_code",
)
# Matomo action types another tool holds as custom events (named so): the page they happened on is the hit's URL.
MATOMO_AS_EVENTS = {"download": "download", "outlink": "outlink", "search": "site_search"}
# Matomo action types no other tool has a place for: refused with this reason (rejected table, reconciliation).
MATOMO_NOT_MOVED = {
    "goal": "a goal conversion",
    "ecommerceOrder": "an e-commerce order",
    "ecommerceAbandonedCart": "an abandoned e-commerce cart",
}
# Matomo's browser names → the family `user_agent` knows; anything else is Chromium-based (Chrome, Samsung, ...).
_MATOMO_BROWSERS: tuple[tuple[str, str], ...] = (
    ("edge", "Edge"),
    ("firefox", "Firefox"),
    ("internet explorer", "IE"),
    ("opera", "Opera"),
    ("safari", "Safari"),
)


def matomo_user_agent(row: Mapping[str, Any]) -> str | None:
    """A typical browser User-Agent for the visit's browser and OS (Matomo keeps names, not the string). None when
    Matomo recognised no browser: such a hit is not a browser's, and Umami would drop it."""
    name = str(row.get("browser_name") or "").strip()
    if not name or name.lower() in ("unknown", "unk"):
        return None
    lowered = name.lower()
    family = next((family for key, family in _MATOMO_BROWSERS if key in lowered and "chrome" not in lowered), "Chrome")
    version = str(row.get("browser_version") or "").strip()
    system = " ".join(
        str(part).strip()
        for part in (row.get("operating_system_name"), row.get("operating_system_version"))
        if part not in (None, "", "Unknown", "UNK")
    )
    return user_agent(f"{family} {version}".strip(), system or None)


def _scalar(value: Any) -> Any:
    return None if value in (None, "") or (isinstance(value, float) and value != value) else value


def matomo_to_hits(row: Mapping[str, Any]) -> Hits:
    """One Matomo action → one hit at its own time, of the visit's visitor, IP and browser: a page view (`action`),
    an event (category, action as the event's name, name, value), a download, outlink or site search as an event of
    that name (its target URL or keyword as event data, on the page it happened on), the visit's referrer on its
    first action. Goals and e-commerce have no place in Umami or Pirsch: refused with the reason, never dropped."""
    kind = str(row.get("type") or "")
    moment = row.get("timestamp")
    if moment in (None, ""):
        raise InvalidHit("action has no timestamp")
    if kind in MATOMO_NOT_MOVED:
        raise InvalidHit(f"{MATOMO_NOT_MOVED[kind]} (Matomo action {kind}) has no equivalent in Umami or Pirsch")
    if kind != "action" and kind != "event" and kind not in MATOMO_AS_EVENTS:
        raise InvalidHit(f"Matomo action type {kind or '(none)'!r} has no equivalent in Umami or Pirsch")
    visitor = _scalar(row.get("visitor_id"))
    resolution = str(row.get("resolution") or "")
    language = str(row.get("language_code") or "")
    country = str(row.get("country_code") or "").lower()
    page = _scalar(row.get("page_url")) or _scalar(row.get("url"))
    hit: dict[str, Any] = {
        "cdt": to_utc_datetime(moment),
        "_id": str(visitor) if visitor else visitor_hex(f"{row.get('site_id')}|{row.get('id_visit')}"),
        "cip": _scalar(row.get("visit_ip")),
        "ua": matomo_user_agent(row),
        "res": resolution if re.fullmatch(r"\d+x\d+", resolution) else None,
        "lang": language if language and language.lower() not in ("unknown", "xx") else None,
        "country": country if len(country) == 2 and country != "xx" else None,
        "urlref": _scalar(row.get("referrer_url")) if _count(row.get("position")) == 1 else None,
    }
    if kind == "action":
        return [hit | {"url": _scalar(row.get("url")), "action_name": _scalar(row.get("page_title"))}]
    if kind == "event":
        columns = {"e_c": "event_category", "e_a": "event_action", "e_n": "event_name", "e_v": "event_value"}
        return [hit | {"url": page, **{key: _scalar(row.get(column)) for key, column in columns.items()}}]
    if kind == "search":
        data = {
            "keyword": _scalar(row.get("site_search_keyword")),
            "category": _scalar(row.get("site_search_category")),
            "results": _scalar(row.get("site_search_count")),
        }
    else:
        data = {"url": _scalar(row.get("url"))}
    event_data = {key: value for key, value in data.items() if value is not None}
    return [hit | {"url": page, "e_a": MATOMO_AS_EVENTS[kind], "event_data": event_data or None}]


def matomo_order(columns: Iterable[str]) -> list[str]:
    available = set(columns)
    return [name for name in ("timestamp", "site_id", "id_visit", "position") if name in available]


MAPPINGS: dict[str, RowMapping] = {
    "default": RowMapping(
        "default",
        "one hit per row; Tracking API names or the documented friendly names",
        default_to_hits,
        default_order,
    ),
    "opentracker_sessions": RowMapping(
        "opentracker_sessions",
        "Opentracker sessions (opentracker.sessions) replayed as Matomo visits",
        opentracker_to_hits,
        opentracker_order,
        key_columns=("session_id",),
        required_any=(OT_START, ("entry_page", "entry_root_url", "current_page")),
    ),
    "umami_events": RowMapping(
        "umami_events",
        "Umami events (umami.events) replayed as page views and custom events",
        umami_to_hits,
        umami_order,
        key_columns=("id",),
        required_any=(("created_at",), ("url_path",), ("event_type",)),
    ),
    "matomo_actions": RowMapping(
        "matomo_actions",
        "Matomo actions (matomo.actions with their visit's fields) replayed as page views and events",
        matomo_to_hits,
        matomo_order,
        key_columns=("site_id", "id_visit", "position"),
        required_any=(("timestamp",), ("type",), ("id_visit",)),
    ),
}


def mapping(name: str) -> RowMapping:
    try:
        return MAPPINGS[name]
    except KeyError:
        raise ConfigError(f"unknown mapping {name!r} (--mapping): choose one of {', '.join(MAPPINGS)}") from None


def check_columns(row_mapping: RowMapping, columns: Iterable[str], table: str) -> None:
    """Fail before sending anything when a table cannot be mapped at all."""
    available = set(columns)
    for choices in row_mapping.required_any:
        if not available.intersection(choices):
            raise ConfigError(
                f"table {table} has none of the columns {', '.join(choices)} that mapping {row_mapping.name!r} needs"
            )
    if row_mapping.name == "default" and not sent_columns(available):
        raise ConfigError(
            f"table {table} has no column the default mapping sends: name columns after Tracking API parameters "
            f"(url, _id, cdt, ...) or friendly names (page_url, visitor_id, timestamp, ...), or pick --mapping"
        )
