"""Per-hit checks before anything is sent: Matomo stores some bad hits when a token is given (a malformed `_id`, a
missing `url`) and silently rewrites others (a future `cdt`), so the client's own validation is the only guard.

`prepare_hit` turns one raw hit (Tracking API names, Python values) into the string parameters that are sent, or
names the reason it cannot be sent.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from destinations.common.push import InvalidHit

from .settings import (
    AUTH_PARAMETERS,
    CDT_AGE_MARGIN_SECONDS,
    CDT_FORMAT,
    CONTROLLED_PARAMETERS,
    INTEGER_PARAMETERS,
    MAX_CDT_AGE_SECONDS,
    NUMERIC_PARAMETERS,
    TOKENLESS_CDT_SECONDS,
)

_HEX16 = re.compile(r"^[0-9a-fA-F]{16}$")
_DIGITS = re.compile(r"^-?\d+(\.\d+)?$")


@dataclass(frozen=True)
class HitRules:
    """What validation depends on besides the hit: the site from config, the token, the time, queued mode."""

    default_idsite: int | None
    has_token: bool
    now: float  # unix seconds
    queued_tracking: bool = False


def to_utc_datetime(value: Any) -> dt.datetime:
    """A timestamp in any usual shape as an aware UTC datetime.

    Aware datetimes are converted; naive ones and `YYYY-MM-DD HH:MM:SS` strings are taken as UTC (what Matomo
    means by `cdt`); numbers are unix seconds, or milliseconds when they are too large to be seconds.
    """
    if isinstance(value, dt.datetime):
        return value.astimezone(dt.UTC) if value.tzinfo else value.replace(tzinfo=dt.UTC)
    if isinstance(value, dt.date):
        return dt.datetime(value.year, value.month, value.day, tzinfo=dt.UTC)
    if isinstance(value, bool):
        raise InvalidHit(f"cdt {value!r} is not a timestamp")
    if isinstance(value, (int, float)) or (isinstance(value, str) and _DIGITS.match(value.strip())):
        number = float(value)
        if not math.isfinite(number):
            raise InvalidHit(f"cdt {value!r} is not a timestamp")
        if abs(number) >= 100_000_000_000:  # after the year 5138 as seconds: these are milliseconds
            number /= 1000.0
        try:
            return dt.datetime.fromtimestamp(number, dt.UTC)
        except (OverflowError, OSError, ValueError):
            raise InvalidHit(f"cdt {value!r} is out of range") from None
    if isinstance(value, str):
        text = value.strip().replace("Z", "+00:00")
        try:
            parsed = dt.datetime.fromisoformat(text)
        except ValueError:
            raise InvalidHit(f"cdt {value!r} is not a timestamp (use YYYY-MM-DD HH:MM:SS in UTC)") from None
        return parsed.astimezone(dt.UTC) if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)
    raise InvalidHit(f"cdt {value!r} is not a timestamp")


def format_cdt(value: Any) -> str:
    """`cdt` as Matomo wants it: `YYYY-MM-DD HH:MM:SS` in UTC."""
    return to_utc_datetime(value).strftime(CDT_FORMAT)


def check_cdt(value: Any, rules: HitRules) -> str:
    moment = to_utc_datetime(value)
    seconds = moment.timestamp()
    if seconds > rules.now:
        raise InvalidHit(f"cdt {moment.strftime(CDT_FORMAT)} is in the future (Matomo would record it as now)")
    age = rules.now - seconds
    if age > MAX_CDT_AGE_SECONDS - CDT_AGE_MARGIN_SECONDS:
        raise InvalidHit(f"cdt {moment.strftime(CDT_FORMAT)} is older than 20 years (Matomo would record it as now)")
    if age > TOKENLESS_CDT_SECONDS and not rules.has_token:
        raise InvalidHit(
            f"cdt {moment.strftime(CDT_FORMAT)} is older than 24 hours: Matomo drops it without a token_auth "
            "(set destination.matomo.token_auth)"
        )
    return moment.strftime(CDT_FORMAT)


def _number(name: str, value: Any) -> str:
    if isinstance(value, bool):
        raise InvalidHit(f"{name} {value!r} is not numeric")
    if isinstance(value, (int, float)):
        if not math.isfinite(value):
            raise InvalidHit(f"{name} {value!r} is not a finite number")
        return repr(value) if isinstance(value, float) else str(value)
    text = str(value).strip()
    try:
        number = float(text)
    except ValueError:
        raise InvalidHit(f"{name} {value!r} is not numeric") from None
    if not math.isfinite(number):
        raise InvalidHit(f"{name} {value!r} is not a finite number")
    return text


def _integer(name: str, value: Any) -> str:
    text = _number(name, value)
    number = float(text)
    if number != int(number):
        raise InvalidHit(f"{name} {value!r} is not a whole number")
    return str(int(number))


def _json_value(name: str, value: Any) -> Any:
    if isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError:
            raise InvalidHit(f"{name} is not valid JSON") from None
    return value


def check_ec_items(value: Any) -> str:
    """A JSON array of items, each `[sku, name, category, price, quantity]` (trailing entries optional)."""
    items = _json_value("ec_items", value)
    if not isinstance(items, list):
        raise InvalidHit("ec_items must be a JSON array of items")
    for position, item in enumerate(items):
        if not isinstance(item, list) or not 1 <= len(item) <= 5:
            raise InvalidHit(f"ec_items[{position}] must be an array [sku, name, category, price, quantity]")
        if not isinstance(item[0], (str, int)) or str(item[0]) == "":
            raise InvalidHit(f"ec_items[{position}] needs a non-empty sku")
        if len(item) > 1 and not isinstance(item[1], str):
            raise InvalidHit(f"ec_items[{position}] name must be a string")
        if len(item) > 2:
            category = item[2]
            valid = isinstance(category, str) or (
                isinstance(category, list) and len(category) <= 5 and all(isinstance(c, str) for c in category)
            )
            if not valid:
                raise InvalidHit(f"ec_items[{position}] category must be a string or up to 5 strings")
        for index, label in ((3, "price"), (4, "quantity")):
            if len(item) > index and (isinstance(item[index], bool) or not isinstance(item[index], (int, float))):
                try:
                    float(str(item[index]))
                except ValueError:
                    raise InvalidHit(f"ec_items[{position}] {label} {item[index]!r} is not numeric") from None
    return json.dumps(items, separators=(",", ":"), ensure_ascii=False)


def check_custom_variables(name: str, value: Any) -> str:
    """`_cvar`/`cvar`: `{"1": ["name", "value"], ...}`."""
    variables = _json_value(name, value)
    if not isinstance(variables, dict) or not all(
        isinstance(pair, list) and len(pair) == 2 for pair in variables.values()
    ):
        raise InvalidHit(f'{name} must be a JSON object like {{"1": ["name", "value"]}}')
    return json.dumps(variables, separators=(",", ":"), ensure_ascii=False)


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, (dict, list)):
        return json.dumps(value, separators=(",", ":"), ensure_ascii=False, default=str)
    if isinstance(value, dt.datetime):
        return format_cdt(value)
    return str(value)


def prepare_hit(raw: Mapping[str, Any], rules: HitRules) -> dict[str, str]:
    """The parameters to send for one raw hit, with `rec`, `apiv` and `queuedtracking` set; `InvalidHit` names
    the reason when the hit must not be sent."""
    hit: dict[str, str] = {}
    for name, value in raw.items():
        if value is None or name in CONTROLLED_PARAMETERS:
            continue
        if isinstance(value, str) and value == "":
            continue
        if isinstance(value, float) and math.isnan(value):
            continue
        if name == "cdt":
            hit[name] = check_cdt(value, rules)
        elif name in INTEGER_PARAMETERS:
            hit[name] = _integer(name, value)
        elif name in NUMERIC_PARAMETERS:
            hit[name] = _number(name, value)
        elif name == "ec_items":
            hit[name] = check_ec_items(value)
        elif name in ("_cvar", "cvar"):
            hit[name] = check_custom_variables(name, value)
        else:
            hit[name] = _text(value)
    if "idsite" not in hit:
        if rules.default_idsite is None:
            raise InvalidHit("idsite is missing (add an idsite column or set destination.matomo.idsite)")
        hit["idsite"] = str(rules.default_idsite)
    if int(hit["idsite"]) < 1:
        raise InvalidHit(f"idsite {hit['idsite']} must be a positive site id")
    if not hit.get("url", "").strip():
        raise InvalidHit("url is missing")
    for name in ("_id", "cid"):
        if name in hit and not _HEX16.match(hit[name]):
            raise InvalidHit(f"{name} {hit[name]!r} must be exactly 16 hexadecimal characters")
    if any(name in hit for name in ("e_c", "e_a", "e_n", "e_v")) and not (hit.get("e_c") and hit.get("e_a")):
        raise InvalidHit("an event needs both e_c (category) and e_a (action)")
    if not rules.has_token:
        for name in AUTH_PARAMETERS:
            if name in hit:
                raise InvalidHit(f"{name} needs a token_auth: Matomo refuses it without one")
    hit["rec"] = "1"
    hit["apiv"] = "1"
    if not rules.queued_tracking:
        hit["queuedtracking"] = "0"  # real validation results even when the QueuedTracking plugin is on
    return hit
