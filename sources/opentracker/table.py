"""Columnar answers → typed Arrow tables, column by column, without a dict per row.

The sessions table is the widest and largest of the suite (~70 columns, millions of rows), so a page is
transposed once (`zip(*rows)`, in C) and every column is typed by one vectorised Arrow cast. Cells that do not
parse (a count such as "1,169") fall back to a tolerant per-value conversion for that column only.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
from collections.abc import Sequence
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from sources.common.arrow import COERCE, ColumnType, arrow_schema, dlt_columns
from sources.common.errors import VendorError

from .settings import DAY_COLUMN, FIELDS, SESSION_COLUMNS, SESSION_ID

log = logging.getLogger("clickhaul.opentracker")

_UTC_US = pa.timestamp("us", tz="UTC")
_TYPES: dict[str, pa.DataType] = {
    "text": pa.string(),
    "bigint": pa.int64(),
    "double": pa.float64(),
    "timestamp": _UTC_US,
}
SCHEMA = arrow_schema(SESSION_COLUMNS)
_KNOWN_COLUMNS = frozenset(SESSION_COLUMNS)


def hints() -> Any:
    """dlt column hints: `session_id` is the key; among duplicates in one load the latest `last_event` wins."""
    columns = dlt_columns(SESSION_COLUMNS, (SESSION_ID,))
    columns["last_event"]["dedup_sort"] = "desc"  # type: ignore[typeddict-unknown-key]
    return columns


def snake_case(name: str) -> str:
    return re.sub(r"(?<=[a-z0-9])([A-Z])", r"_\1", name).lower()


def _strings(values: Sequence[Any]) -> pa.Array:
    try:
        array = pa.array(values, type=pa.string())
    except (pa.ArrowTypeError, pa.ArrowInvalid):  # a number or a nested value where a string was expected
        array = pa.array([None if value is None else str(value) for value in values], type=pa.string())
    # Every cell is a string; "" means "no value".
    return pc.if_else(pc.equal(array, ""), pa.scalar(None, pa.string()), array)


def _numbers(strings: pa.Array, kind: ColumnType, column: str) -> pa.Array:
    target = pa.int64() if kind in ("bigint", "timestamp") else pa.float64()
    try:
        return pc.cast(strings, target)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        coerce = COERCE["bigint" if target == pa.int64() else "double"]
        values, bad = [], 0
        for value in strings.to_pylist():
            try:
                values.append(coerce(value))
            except (TypeError, ValueError):
                values.append(None)
                bad += 1
        if bad:
            log.warning("opentracker: %d value(s) of %s are not numbers; stored as null", bad, column)
        return pa.array(values, type=target)


def convert(values: Sequence[Any] | None, kind: ColumnType, rows: int, column: str) -> pa.Array:
    if values is None:
        return pa.nulls(rows, type=_TYPES[kind])
    strings = _strings(values)
    if kind == "text":
        return strings
    numbers = _numbers(strings, kind, column)
    if kind == "timestamp":  # unix milliseconds
        return numbers.cast(pa.timestamp("ms", tz="UTC")).cast(_UTC_US)
    return numbers


def page_table(fields: Sequence[str], rows: Sequence[Sequence[Any]], timezone: str, fallback_day: dt.date) -> pa.Table:
    """One API page as a typed table: declared columns in order, then any field the API added, as text."""
    width = len(fields)
    for index, row in enumerate(rows):
        if not isinstance(row, list) or len(row) != width:
            raise VendorError(
                "opentracker",
                f"resultsList row {index} has {len(row) if isinstance(row, list) else 'no'} cells for {width} fields",
            )
    count = len(rows)
    by_field: dict[str, Sequence[Any]] = dict(zip(fields, zip(*rows, strict=True), strict=True)) if count else {}
    arrays: dict[str, pa.Array] = {}
    for api, column, kind in FIELDS:
        values = by_field.pop(api, None)
        if values is None and api in fields:  # a page without rows
            values = ()
        arrays[column] = convert(values, kind, count, column)
    for api, values in by_field.items():  # fields this version of the API adds: keep them as text
        name = snake_case(api)
        arrays[name if name not in _KNOWN_COLUMNS else f"{name}_raw"] = convert(values, "text", count, name)
    start = arrays["session_start"]
    local = pc.local_timestamp(start.cast(pa.timestamp("us", tz=timezone)))
    day = pc.fill_null(local.cast(pa.date32()), pa.scalar(fallback_day, pa.date32()))
    table = pa.Table.from_arrays([day, *arrays.values()], names=[DAY_COLUMN, *arrays])
    if count and table.column(SESSION_ID).null_count:
        log.warning("opentracker: %d session(s) without session_id skipped", table.column(SESSION_ID).null_count)
        table = table.filter(pc.is_valid(table.column(SESSION_ID)))
    key = table.schema.get_field_index(SESSION_ID)
    return table.cast(table.schema.set(key, table.schema.field(key).with_nullable(False)))  # as the dlt hints say


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
