"""The days a day-based resource asks for, and the completeness watermark that says how far it got.

A scheduled (incremental) run asks, for each entity the table covers (a domain, a site, a website, an account),
the days from its watermark minus `lookback_days` up to today, and when every page and window of those days was
read, moves the watermark to the last day asked. The watermark lives in the resource's dlt state, which dlt
commits with the load package: a run that fails during extraction leaves it where it was, a package that fails
to load keeps it pending with its data (and `--on-pending drop` restores the state from before). So a table that
never has rows, or had none lately, still moves on, and re-reads only the lookback window.

- An entity without a watermark (new in the configuration) starts at `start_date`.
- A fixed range (`--start/--end`, a backfill window) asks exactly its days and never moves a watermark.
- On Airflow (`CLICKHAUL_EXTERNAL_SCHEDULER=1`) each DAG run asks exactly its data interval.
- State written by earlier versions (dlt's incremental `last_value` on the row cursor) is taken over as the
  watermark of every entity on the first run.

dlt is imported by the functions that use it: `clickhaul status` reads the watermarks without paying for dlt.
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .clock import today_in
from .errors import ConfigError
from .windows import DateWindow, WindowUnit, parse_date, split_windows

if TYPE_CHECKING:
    from dlt.sources import DltResource

EXTERNAL_SCHEDULER_ENV = "CLICKHAUL_EXTERNAL_SCHEDULER"
WATERMARKS = "watermarks"  # resource state key: {entity: "YYYY-MM-DD"}
ACCOUNT = "account"  # the entity of a table that covers the whole account (one pipeline, one login)
LEGACY_CURSORS = ("day", "window_start")  # the row fields earlier versions kept a dlt incremental on


@dataclass(frozen=True)
class DayCursor:
    """What a day-based resource is configured to load: from `start_date`, up to a fixed `end_date` or today."""

    start_date: dt.date
    end_date: dt.date | None = None
    lookback_days: int = 3

    def plan(self, resource: str, tz: str, entities: Iterable[str]) -> DayPlan:
        """The days each entity needs in this run; read inside the resource (it reads the resource's state)."""
        names = list(dict.fromkeys(entities))
        if self.end_date is not None:
            return DayPlan(resource, {name: (self.start_date, self.end_date) for name in names}, moves=False)
        interval = scheduler_interval()
        if interval is not None:
            return DayPlan(resource, dict.fromkeys(names, interval), moves=False)
        import dlt

        state = dlt.current.resource_state(resource)
        spans = {}
        for name in names:
            span = self.span(watermark(state, name), tz)
            if span is not None:
                spans[name] = span
        return DayPlan(resource, spans, moves=True)

    def span(self, mark: dt.date | None, tz: str) -> tuple[dt.date, dt.date] | None:
        """A scheduled run's days for an entity with watermark `mark` (None: new, from `start_date`)."""
        today = today_in(tz)
        first = self.start_date if mark is None else max(self.start_date, mark - dt.timedelta(self.lookback_days))
        return (first, today) if first <= today else None

    def merge_resource(
        self,
        load: Callable[[], Iterator[Any]],
        name: str,
        primary_key: str | Sequence[str] | None = None,
        columns: Any = None,
        parallelized: bool = False,
    ) -> DltResource:
        """The day-based table `name`, merged on its key (None: the pages carry their own key and columns, as
        Webtrekk's do): every vendor's windowed tables are made here."""
        hints: dict[str, Any] = {"columns": columns, "parallelized": parallelized}
        if primary_key is not None:
            hints["primary_key"] = primary_key
        import dlt

        return self.attach(dlt.resource(load, name=name, write_disposition="merge", **hints))

    def attach(self, resource: DltResource) -> DltResource:
        """Tag `resource` as day-based, so tools can plan its days without running it (`clickhaul run --dry-run`)."""
        setattr(resource, _ATTRIBUTE, self)
        return resource


_ATTRIBUTE = "clickhaul_day_cursor"


def day_cursor_of(resource: Any) -> DayCursor | None:
    """The DayCursor of a day-based resource, None for the others."""
    cursor = getattr(resource, _ATTRIBUTE, None)
    return cursor if isinstance(cursor, DayCursor) else None


@dataclass
class DayPlan:
    """One run's days per entity; `complete()` moves the watermarks once everything was read."""

    resource: str
    spans: dict[str, tuple[dt.date, dt.date]]
    moves: bool
    _completed: bool = field(default=False, repr=False)

    def windows(self, unit: WindowUnit, tz: str, align: bool = False) -> list[tuple[str, DateWindow]]:
        """(entity, window) pairs. `align` widens the first window of a week or month unit to its whole period,
        for reports whose rows only make sense for a whole period."""
        pairs = []
        for name, (start, end) in self.spans.items():
            if align and unit == "week":
                start -= dt.timedelta(days=start.weekday())
            elif align and unit == "month":
                start = start.replace(day=1)
            pairs += [(name, window) for window in split_windows(start, end, unit, tz)]
        return pairs

    def complete(self) -> None:
        """Every page and window of the planned days was read: move each entity's watermark to its last day."""
        if not self.moves or self._completed:
            return
        import dlt

        state = dlt.current.resource_state(self.resource)
        marks = state.setdefault(WATERMARKS, {})
        for name, (_, end) in self.spans.items():
            marks[name] = end.isoformat()
        state.pop("incremental", None)  # an earlier version's cursor, taken over by now
        self._completed = True


def watermark(state: Mapping[str, Any], entity: str) -> dt.date | None:
    """An entity's watermark; before this version's first run, the earlier version's one cursor for the table."""
    marks = state.get(WATERMARKS)
    if isinstance(marks, Mapping):
        value = marks.get(entity)
        return parse_date(value) if value else None
    return legacy_cursor(state)


def legacy_cursor(state: Mapping[str, Any]) -> dt.date | None:
    for name in LEGACY_CURSORS:
        value = ((state.get("incremental") or {}).get(name) or {}).get("last_value")
        if value is not None:
            return value.date() if isinstance(value, dt.datetime) else parse_date(value)
    return None


def scheduler_interval() -> tuple[dt.date, dt.date] | None:
    """On Airflow, the DAG run's data interval as inclusive days (its end is exclusive)."""
    if os.environ.get(EXTERNAL_SCHEDULER_ENV) != "1":
        return None
    import dlt

    interval = dlt.current.interval()
    if interval is None:
        return None
    start, end = interval.start.date(), interval.end.date()
    return start, max(start, end - dt.timedelta(days=1))


def configured_days(
    start_date: dt.date | str | None, end_date: dt.date | str | None, tz: str, history_days: int, prefix: str = ""
) -> tuple[dt.date, dt.date | None]:
    """A source's `start_date` (first run; default `history_days` ago in `tz`) and optional fixed `end_date`;
    `prefix` (e.g. "sources.pirsch.") names the keys in messages."""
    first = (
        parse_date(start_date, f"{prefix}start_date") if start_date else today_in(tz) - dt.timedelta(days=history_days)
    )
    last = parse_date(end_date, f"{prefix}end_date") if end_date else None
    if last and last < first:
        raise ConfigError(f"{prefix}end_date {last} is before {prefix}start_date {first}")
    return first, last
