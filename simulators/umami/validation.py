"""Request validation with the error bodies each version sends.

Umami 2.20 validates with zod 3 and answers `{"error": ["field: message", ...]}` (or `{"error": "Bad request"}`);
Umami 3.1 validates with zod 4 and answers `{"error": {"message", "code", "status", "errors", "properties"}}`, the
field messages nested by path. Rules here are small declarations; each knows its message in both dialects.
"""

from __future__ import annotations

import datetime as dt
import re
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from simulators.harness import Response

Path = tuple[str | int, ...]
UNITS = ("year", "month", "day", "hour", "minute")


@dataclass(frozen=True)
class Problem:
    """One field's problem; a message of None means that version does not report it at that field."""

    path: Path
    v2: str | None
    v3: str | None


class Invalid(Exception):
    """A request Umami refuses with 400. `bare`: the handler's own "Bad request", not a schema's; `form`: Umami 3's
    messages about the request as a whole (zod 3 in Umami 2 drops those: its list stays empty)."""

    def __init__(self, problems: Sequence[Problem] = (), form: Sequence[str] = (), *, bare: bool = False) -> None:
        super().__init__("bad request")
        self.problems = list(problems)
        self.form = list(form)
        self.bare = bare


def error_body(version: str, status: int, message: str, code: str) -> dict[str, Any]:
    if version == "2":
        return {"error": message}
    return {"error": {"message": message, "code": code, "status": status}}


def refusal(version: str, status: int, message: str, code: str) -> Response:
    return Response(status, error_body(version, status, message, code))


def bad_request(version: str, invalid: Invalid) -> Response:
    if invalid.bare:
        return refusal(version, 400, "Bad request", "bad-request")
    if version == "2":
        return Response(
            400, {"error": [f"{'.'.join(map(str, p.path))}: {p.v2}" for p in invalid.problems if p.v2 is not None]}
        )
    body: dict[str, Any] = {"message": "Bad request", "code": "bad-request", "status": 400, "errors": invalid.form}
    problems = [p for p in invalid.problems if p.v3 is not None]
    if problems:
        tree: dict[str, Any] = {"errors": []}
        for problem in problems:
            node = tree
            for step in problem.path:
                if isinstance(step, int):
                    items = node.setdefault("items", [])
                    while len(items) <= step:
                        items.append({"errors": []})
                    node = items[step]
                else:
                    node = node.setdefault("properties", {}).setdefault(step, {"errors": []})
            node["errors"].append(problem.v3)
        body["properties"] = tree["properties"]
    return Response(400, {"error": body})


def js_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


MISSING = object()


@dataclass(frozen=True)
class Rule:
    """One field: its kind, whether it may be absent, and its limits. `check` returns the problems."""

    kind: str  # string, number, date, uuid, timezone, enum, regex, array, object, record
    optional: bool = False
    choices: tuple[str, ...] = ()  # enum values, or the regex pattern as one item
    minimum: float | None = None
    maximum: float | None = None
    positive: bool = False
    items: Rule | None = None
    fields: Mapping[str, Rule] = field(default_factory=dict)

    def check(self, value: Any, path: Path) -> list[Problem]:
        if value is MISSING or value is None:
            if self.optional:
                return []
            if self.kind in ("number", "date"):  # z.coerce: undefined becomes NaN / Invalid Date
                return [self._coerce_failed(path)]
            return [Problem(path, "Required", f"Invalid input: expected {self._v3_name()}, received undefined")]
        return getattr(self, "_" + self.kind)(value, path)

    def _v3_name(self) -> str:
        return {"uuid": "string", "timezone": "string", "enum": "string", "regex": "string"}.get(self.kind, self.kind)

    def _coerce_failed(self, path: Path) -> Problem:
        if self.kind == "date":
            return Problem(path, "Invalid date", "Invalid input: expected date, received Date")
        return Problem(path, "Expected number, received nan", "Invalid input: expected number, received NaN")

    def _wrong_type(self, value: Any, path: Path) -> list[Problem]:
        got = js_type(value)
        return [
            Problem(
                path,
                f"Expected {self._v3_name()}, received {got}",
                f"Invalid input: expected {self._v3_name()}, received {got}",
            )
        ]

    def _string(self, value: Any, path: Path) -> list[Problem]:
        return [] if isinstance(value, str) else self._wrong_type(value, path)

    def _uuid(self, value: Any, path: Path) -> list[Problem]:
        if not isinstance(value, str):
            return self._wrong_type(value, path)
        return [] if is_uuid(value) else [Problem(path, "Invalid uuid", "Invalid UUID")]

    def _timezone(self, value: Any, path: Path) -> list[Problem]:
        if not isinstance(value, str):
            return self._wrong_type(value, path)
        return [] if valid_timezone(value) else [Problem(path, "Invalid timezone", "Invalid timezone")]

    def _number(self, value: Any, path: Path) -> list[Problem]:
        number = coerce_number(value)
        if number is None:
            return [self._coerce_failed(path)]
        if self.positive and number <= 0:
            return [Problem(path, "Number must be greater than 0", "Too small: expected number to be >0")]
        if self.minimum is not None and number < self.minimum:
            limit = f"{self.minimum:g}"
            return [
                Problem(
                    path,
                    f"Number must be greater than or equal to {limit}",
                    f"Too small: expected number to be >={limit}",
                )
            ]
        if self.maximum is not None and number > self.maximum:
            limit = f"{self.maximum:g}"
            return [
                Problem(
                    path, f"Number must be less than or equal to {limit}", f"Too big: expected number to be <={limit}"
                )
            ]
        return []

    def _date(self, value: Any, path: Path) -> list[Problem]:
        return [] if parse_instant(value) is not None else [self._coerce_failed(path)]

    def _enum(self, value: Any, path: Path) -> list[Problem]:
        if value in self.choices:
            return []
        v2 = "Invalid enum value. Expected " + " | ".join(f"'{c}'" for c in self.choices) + f", received '{value}'"
        return [Problem(path, v2, "Invalid option: expected one of " + "|".join(f'"{c}"' for c in self.choices))]

    def _regex(self, value: Any, path: Path) -> list[Problem]:
        if not isinstance(value, str):
            return self._wrong_type(value, path)
        return [] if re.search(self.choices[0], value) else [Problem(path, "Invalid", "Invalid string")]

    def _array(self, value: Any, path: Path) -> list[Problem]:
        if not isinstance(value, list):
            return self._wrong_type(value, path)
        if self.minimum is not None and len(value) < self.minimum:
            count = int(self.minimum)
            return [
                Problem(
                    path,
                    f"Array must contain at least {count} element(s)",
                    f"Too small: expected array to have >={count} items",
                )
            ]
        if self.maximum is not None and len(value) > self.maximum:
            count = int(self.maximum)
            return [
                Problem(
                    path,
                    f"Array must contain at most {count} element(s)",
                    f"Too big: expected array to have <={count} items",
                )
            ]
        assert self.items is not None
        return [problem for index, item in enumerate(value) for problem in self.items.check(item, (*path, index))]

    def _object(self, value: Any, path: Path) -> list[Problem]:
        if not isinstance(value, dict):
            return self._wrong_type(value, path)
        return check_fields(self.fields, value, path)

    def _record(self, value: Any, path: Path) -> list[Problem]:
        return [] if isinstance(value, dict) else self._wrong_type(value, path)


def check_fields(fields: Mapping[str, Rule], value: Mapping[str, Any], path: Path = ()) -> list[Problem]:
    return [problem for name, rule in fields.items() for problem in rule.check(value.get(name, MISSING), (*path, name))]


def is_uuid(value: str) -> bool:
    try:
        uuid.UUID(value)
    except ValueError:
        return False
    return len(value) == 36


def valid_timezone(name: str) -> bool:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return False
    return True


def coerce_number(value: Any) -> float | None:
    if isinstance(value, bool):
        return float(value)
    if isinstance(value, (int, float)):
        return float(value)
    try:
        return float(str(value).strip()) if str(value).strip() else 0.0
    except ValueError:
        return None


def parse_instant(value: Any) -> float | None:
    """What `z.coerce.date()` accepts: epoch milliseconds or an ISO date/time."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, (int, float)) or (isinstance(value, str) and value.strip().lstrip("-").isdigit()):
        return int(value) / 1000.0
    try:
        moment = dt.datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return None
    return (moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)).timestamp()


def rule(kind: str, *choices: str, **limits: Any) -> Rule:
    return Rule(kind, choices=choices, **limits)


def optional(kind: str, *choices: str, **limits: Any) -> Rule:
    return Rule(kind, optional=True, choices=choices, **limits)


def obj(**fields: Rule) -> Rule:
    return Rule("object", fields=fields)


def array(items: Rule, minimum: int | None = None, maximum: int | None = None) -> Rule:
    return Rule("array", items=items, minimum=minimum, maximum=maximum)
