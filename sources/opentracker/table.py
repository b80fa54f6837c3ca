"""Columnar answers → typed Arrow tables, column by column, without a dict per row.

The sessions table is the widest and largest of the suite (~70 columns, millions of rows): a page goes through
the common header-and-cells converter (`TableSpec.arrow_rows`), which types each column with one Arrow call and
takes the per-value path only for a column holding a cell Arrow cannot read (a count such as "1,169"). A value
that fits no rule is kept verbatim in `<column>__v_text`, as for every vendor.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
from collections.abc import Sequence
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from sources.common.arrow import TableSpec, dlt_columns
from sources.common.errors import VendorError

from .settings import DAY_COLUMN, FIELDS, SESSION_COLUMNS, SESSION_ID

log = logging.getLogger("clickhaul.opentracker")

_KNOWN_COLUMNS = frozenset(SESSION_COLUMNS)
_COLUMN_OF = {api: column for api, column, _ in FIELDS}
# Every column but `day`, which is derived from `session_start` in the account's timezone.
_PAGE = TableSpec({column: kind for _, column, kind in FIELDS}, (SESSION_ID,))


def hints() -> Any:
    """dlt column hints: `session_id` is the key; among duplicates in one load the latest `last_event` wins."""
    columns = dlt_columns(SESSION_COLUMNS, (SESSION_ID,))
    columns["last_event"]["dedup_sort"] = "desc"  # type: ignore[typeddict-unknown-key]
    return columns


def snake_case(name: str) -> str:
    return re.sub(r"(?<=[a-z0-9])([A-Z])", r"_\1", name).lower()


def column_name(api: str) -> str:
    """The table's name for an API field; a field this version of the API added keeps a snake_case name."""
    if api in _COLUMN_OF:
        return _COLUMN_OF[api]
    name = snake_case(api)
    return name if name not in _KNOWN_COLUMNS else f"{name}_raw"


def page_table(
    fields: Sequence[str], rows: Sequence[Sequence[Any]] | pa.ListArray, timezone: str, fallback_day: dt.date
) -> pa.Table:
    """One API page as a typed table: `day`, the declared columns in order, then any field the API added, as text."""
    width = len(fields)
    wrong = _wrong_row(rows, width)
    if wrong is not None:
        index, length = wrong
        raise VendorError(
            "opentracker", f"resultsList row {index} has {'no' if length is None else length} cells for {width} fields"
        )
    table = _PAGE.arrow_rows([column_name(api) for api in fields], rows)
    local = pc.local_timestamp(table.column("session_start").cast(pa.timestamp("us", tz=timezone)))
    day = pc.fill_null(local.cast(pa.date32()), pa.scalar(fallback_day, pa.date32()))
    table = table.add_column(0, pa.field(DAY_COLUMN, pa.date32()), day)
    keys = table.column(SESSION_ID)
    valid = pc.and_(pc.is_valid(keys), pc.not_equal(keys, ""))
    missing = len(table) - pc.sum(valid.cast(pa.int64())).as_py() if len(table) else 0
    if missing:
        log.warning("opentracker: %d session(s) without session_id skipped", missing)
        table = table.filter(valid)
    return table


def _wrong_row(rows: Sequence[Sequence[Any]] | pa.ListArray, width: int) -> tuple[int, int | None] | None:
    """The first row that is not a list of `width` cells: its index and length (None: not a list)."""
    if isinstance(rows, pa.ListArray):
        lengths = pc.list_value_length(rows)
        wrong = pc.fill_null(pc.not_equal(lengths, width), True)
        if not pc.any(wrong).as_py():
            return None
        index = pc.index(wrong, True).as_py()
        return index, lengths[index].as_py()
    for index, row in enumerate(rows):
        if not isinstance(row, list) or len(row) != width:
            return index, len(row) if isinstance(row, list) else None
    return None


def keep_latest(tables: Sequence[pa.Table]) -> pa.Table | None:
    """The pages of one window as one table with one row per session: its last occurrence (pages overlap).

    Overlaps are few and sit at page boundaries, so only the pages holding a session that appears again later
    are filtered; the rest are joined without copying.
    """
    later: set[str] = set()
    kept: list[pa.Table] = []
    for table in reversed([table for table in tables if table.num_rows]):
        ids = table.column(SESSION_ID).to_pylist()
        keep = [True] * len(ids)
        for index in range(len(ids) - 1, -1, -1):
            if ids[index] in later:
                keep[index] = False
            else:
                later.add(ids[index])
        kept.append(table if all(keep) else table.filter(pa.array(keep)))
    if not kept:
        return None
    kept.reverse()
    return pa.concat_tables(kept, promote_options="default") if len(kept) > 1 else kept[0]
