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
- Unchanged windows are not loaded again: a scheduled run keeps a digest of each window's pages the next run
  re-reads (`window_digests`), and a window whose pages come back exactly the same (every value, in order) is
  dropped before dlt sees it: merging it again would cost a load job and a merge per table and change nothing. A
  fixed range loads every window, and where it loads a window a scheduled run remembers, its digest replaces the
  remembered one, so the table and the digests always agree.

dlt is imported by the functions that use it: `clickhaul status` reads the watermarks without paying for dlt.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

from .clock import today_in
from .errors import ConfigError
from .monitor import current_monitor, rows_in
from .windows import DateWindow, WindowUnit, parse_date, split_windows

if TYPE_CHECKING:
    from dlt.sources import DltResource

EXTERNAL_SCHEDULER_ENV = "CLICKHAUL_EXTERNAL_SCHEDULER"
WATERMARKS = "watermarks"  # resource state key: {entity: "YYYY-MM-DD"}
WINDOW_DIGESTS = "window_digests"  # resource state key: {entity: {"<window>": digest of its pages}}
ACCOUNT = "account"  # the entity of a table that covers the whole account (one pipeline, one login)
LEGACY_CURSORS = ("day", "window_start")  # the row fields earlier versions kept a dlt incremental on
Page = TypeVar("Page")


@dataclass(frozen=True)
class DayCursor:
    """What a day-based resource is configured to load: from `start_date`, up to a fixed `end_date` or today."""

    start_date: dt.date
    end_date: dt.date | None = None
    lookback_days: int = 3

    def plan(self, resource: str, tz: str, entities: Iterable[str]) -> DayPlan:
        """The days each entity needs in this run; read inside the resource (it reads the resource's state)."""
        import dlt

        names = list(dict.fromkeys(entities))
        state = dlt.current.resource_state(resource)
        digests = state.get(WINDOW_DIGESTS) or {}
        if self.end_date is not None:
            fixed = {name: (self.start_date, self.end_date) for name in names}
            return DayPlan(resource, fixed, moves=False, lookback_days=self.lookback_days, digests=digests)
        interval = scheduler_interval()
        if interval is not None:
            spans = dict.fromkeys(names, interval)
            return DayPlan(resource, spans, moves=False, lookback_days=self.lookback_days, digests=digests)
        spans = {}
        for name in names:
            span = self.span(watermark(state, name), tz)
            if span is not None:
                spans[name] = span
        return DayPlan(resource, spans, moves=True, lookback_days=self.lookback_days, digests=digests)

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
    lookback_days: int = 3
    digests: Mapping[str, Mapping[str, str]] = field(default_factory=dict)  # the last scheduled run's windows
    _completed: bool = field(default=False, repr=False)
    _read: dict[tuple[str, str], tuple[DateWindow, str]] = field(default_factory=dict, repr=False)

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

    def changed(self, entity: str, window: DateWindow, pages: Iterable[Page]) -> Iterator[Page]:
        """The pages of one window; none in a scheduled run when they are exactly what the last scheduled run
        loaded from it. Safe from the workers' threads."""
        key = str(window)
        known = self.digests.get(entity, {}).get(key)
        if known is None and not self.moves:  # a fixed range over days no scheduled run remembers: stream
            yield from pages
            return
        digest = hashlib.blake2b(digest_size=16)
        if known is None:
            for page in pages:
                _digest_page(digest, page)
                yield page
            self._read[(entity, key)] = (window, digest.hexdigest())
            return
        held = []
        for page in pages:
            _digest_page(digest, page)
            held.append(page)
        self._read[(entity, key)] = (window, digest.hexdigest())
        if self.moves and digest.hexdigest() == known:
            current_monitor().count(unchanged_rows=sum(rows_in(page) for page in held))
            return
        yield from held

    def complete(self) -> None:
        """Every page and window of the planned days was read: move each entity's watermark to its last day, and
        remember the digests of the windows the next scheduled run re-reads."""
        if self._completed:
            return
        self._completed = True
        import dlt

        state = dlt.current.resource_state(self.resource)
        if not self.moves:
            self._replace_known_digests(state)
            return
        marks = state.setdefault(WATERMARKS, {})
        digests: dict[str, dict[str, str]] = {}
        for name, (_, end) in self.spans.items():
            marks[name] = end.isoformat()
            reread_from = end - dt.timedelta(days=self.lookback_days)
            digests[name] = {
                key: digest
                for (entity, key), (window, digest) in sorted(self._read.items())
                if entity == name and window.end >= reread_from
            }
        state[WINDOW_DIGESTS] = {name: windows for name, windows in digests.items() if windows}
        state.pop("incremental", None)  # an earlier version's cursor, taken over by now

    def _replace_known_digests(self, state: dict[str, Any]) -> None:
        """A fixed range loaded these windows: what the table holds of them is what it read now."""
        if not self._read:
            return
        digests = {name: dict(windows) for name, windows in self.digests.items()}
        for (entity, key), (_, digest) in self._read.items():
            digests.setdefault(entity, {})[key] = digest
        state[WINDOW_DIGESTS] = digests


def _digest_page(digest: Any, page: Any) -> None:
    """Feeds a page to `digest`: an Arrow table by its schema and values, dlt's hints around it by their content."""
    import orjson
    import pyarrow as pa

    meta = getattr(page, "meta", None)
    if meta is not None:
        hints = {slot: getattr(meta, slot) for slot in type(meta).__slots__}
        digest.update(orjson.dumps(hints, default=str, option=orjson.OPT_SORT_KEYS | orjson.OPT_NON_STR_KEYS))
        page = page.data
    if isinstance(page, pa.Table):
        sink = pa.BufferOutputStream()
        with pa.ipc.new_stream(sink, page.schema) as writer:
            writer.write_table(page)
        digest.update(sink.getvalue())
    else:
        digest.update(orjson.dumps(page, default=str, option=orjson.OPT_NON_STR_KEYS))


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
