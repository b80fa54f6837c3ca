"""Pages of rows → typed Arrow tables, with matching dlt column hints.

Loading Arrow tables is what makes the DuckDB load fast (~100k rows/s against ~1.5k for dict rows), and
declaring the type of every column here is what keeps integers integers and dates dates whatever the vendor
sent (strings, numbers, nulls).
"""

from __future__ import annotations

import datetime as dt
import json
import threading
from collections.abc import Collection, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from itertools import zip_longest
from operator import itemgetter
from typing import Any, Literal, TypeAlias

import pyarrow as pa
import pyarrow.compute as pc
from dlt.common.schema.typing import TColumnSchema, TTableSchemaColumns

from .errors import DataError
from .monitor import current_monitor

ColumnType = Literal["text", "bigint", "double", "bool", "date", "timestamp", "json"]

_ARROW_TYPES: dict[str, pa.DataType] = {
    "text": pa.string(),
    "bigint": pa.int64(),
    "double": pa.float64(),
    "bool": pa.bool_(),
    "date": pa.date32(),
    "timestamp": pa.timestamp("us", tz="UTC"),
    "json": pa.string(),  # serialised JSON text: portable across every destination
}
_DLT_TYPES = {"json": "text", "timestamp": "timestamp"}

_ONE_CONVERSION_AT_A_TIME = threading.Lock()
"""Pages are read by several workers, but converted one at a time. A page's conversion is some hundred short Arrow
calls, each letting go of the GIL and taking it back: with four workers converting at once, every call hands the
GIL to another thread. 116 Opentracker pages of 1,000 sessions: 0.83-0.87 s of CPU converted by four threads at
once, 0.48-0.51 s one at a time, in the same wall time (the GIL lets only one run anyway). Reading the network and
parsing JSON (`json_rows`, one call that lets go of the GIL throughout) stay parallel."""


def _to_int(value: Any) -> int | None:
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return int(value)
    return int(float(str(value).replace(",", "").strip()))


def _to_float(value: Any) -> float | None:
    if value is None or value == "":
        return None
    if isinstance(value, (int, float)):
        return float(value)
    text = str(value).strip().replace(",", "")
    if text.endswith("%"):
        return float(text[:-1]) / 100.0
    return float(text)


def _to_bool(value: Any) -> bool | None:
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        return value
    return str(value).strip().lower() in ("1", "true", "yes", "y", "t")


def _to_date(value: Any) -> dt.date | None:
    if value is None or value == "":
        return None
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    return dt.date.fromisoformat(str(value)[:10])


def _to_timestamp(value: Any) -> dt.datetime | None:
    if value is None or value == "":
        return None
    if isinstance(value, dt.datetime):
        return value if value.tzinfo else value.replace(tzinfo=dt.UTC)
    if isinstance(value, (int, float)) or (isinstance(value, str) and value.strip().lstrip("-").isdigit()):
        return dt.datetime.fromtimestamp(int(value) / 1000.0, tz=dt.UTC)  # unix milliseconds
    parsed = dt.datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)


def _to_text(value: Any) -> str | None:
    if value is None:
        return None
    return value if isinstance(value, str) else str(value)


def _to_json(value: Any) -> str | None:
    if value is None:
        return None
    return json.dumps(value, sort_keys=True, ensure_ascii=False)


COERCE = {
    "text": _to_text,
    "bigint": _to_int,
    "double": _to_float,
    "bool": _to_bool,
    "date": _to_date,
    "timestamp": _to_timestamp,
    "json": _to_json,
}


def dlt_columns(
    columns: Mapping[str, ColumnType],
    primary_key: Sequence[str] = (),
    descriptions: Mapping[str, str] | None = None,
) -> TTableSchemaColumns:
    """dlt hints matching the Arrow schema, so dlt and the destination agree on every type."""
    hints: TTableSchemaColumns = {}
    for name, kind in columns.items():
        column: TColumnSchema = {"name": name, "data_type": _DLT_TYPES.get(kind, kind)}  # type: ignore[typeddict-item]
        if kind == "timestamp":
            column["timezone"] = True
        if name in primary_key:
            column["nullable"] = False
            column["primary_key"] = True
        else:
            column["nullable"] = True
        if descriptions and name in descriptions:
            column["description"] = descriptions[name]
        hints[name] = column
    return hints


MISFIT_SUFFIX = "__v_text"
_UTC_MS = pa.timestamp("ms", tz="UTC")
_INTEGER = "^-?[0-9]+$"
# Python types whose values Arrow converts exactly as COERCE would, per declared type (None is always fine).
_DIRECT: dict[str, frozenset[type]] = {
    "text": frozenset({str}),
    "bigint": frozenset({int}),
    "double": frozenset({int, float}),
    "bool": frozenset({bool}),
    "date": frozenset({dt.date}),
    "timestamp": frozenset({dt.datetime}),
    "json": frozenset(),
}


def _blank_to_null(strings: pa.Array) -> pa.Array:
    return pc.if_else(pc.equal(strings, ""), pa.scalar(None, pa.string()), strings)


Cells: TypeAlias = "Sequence[Any] | pa.Array"  # a column's values: Python values, or already an Arrow array of strings


def _vectorised(values: Cells, kind: ColumnType, blank_free: bool = False) -> pa.Array | None:
    """The column typed by Arrow in C, or None when some cell needs COERCE's per-value rules.

    Only inputs Arrow reads as COERCE does take this path: values already of the declared type, or strings that
    Arrow's cast parses (a subset of what COERCE reads: " 12", "1,169", "12%" or "+1" fail and fall back).
    `blank_free`: the strings' empty values are nulls already.
    """
    target = _ARROW_TYPES[kind]
    if kind == "json":
        return None
    try:
        if isinstance(values, pa.Array):
            strings = values
        else:
            try:  # most answers send every cell as a string (or null): one pass in C finds out
                strings = pa.array(values, type=pa.string())
            except (pa.ArrowInvalid, pa.ArrowTypeError):
                types = set(map(type, values)) - {type(None)}
                return pa.array(values, type=target) if types <= _DIRECT[kind] else None
        if kind == "text":
            return strings
        strings = strings if blank_free else _blank_to_null(strings)
        if kind in ("bigint", "timestamp"):  # Arrow would read "0x10" as 16; ISO timestamps take the per-value path
            if not pc.all(pc.match_substring_regex(strings, _INTEGER)).as_py():
                return None
            integers = pc.cast(strings, pa.int64())
            return integers if kind == "bigint" else integers.cast(_UTC_MS).cast(target)  # unix milliseconds
        return pc.cast(strings, target)
    except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError, OverflowError):
        return None


def _coerced(
    name: str, kind: ColumnType, values: Cells, key: bool, blank_free: bool = False
) -> tuple[pa.Array, pa.Array | None]:
    """One declared column, typed, and the verbatim text of the values that did not fit (None if all fit)."""
    array = _vectorised(values, kind, blank_free)
    kept: list[str | None] | None = None
    if array is None:
        if isinstance(values, pa.Array):
            values = values.to_pylist()
        coerce = COERCE[kind]
        typed: list[Any] = []
        for index, raw in enumerate(values):
            try:
                typed.append(coerce(raw))
            except (ValueError, TypeError, OverflowError):
                if key:
                    raise DataError(f"key column {name!r} got {raw!r}, which is not a {kind}") from None
                typed.append(None)
                kept = kept or [None] * len(values)
                kept[index] = raw if isinstance(raw, str) else json.dumps(raw, default=str)
        array = pa.array(typed, type=_ARROW_TYPES[kind])
    if kind == "text" and not key and not (blank_free and isinstance(values, pa.Array)):
        # An empty value is no value: one convention for every vendor and every destination (PostgreSQL's
        # COPY would turn '' into NULL anyway, DuckDB would keep it). Key columns keep '' (never null).
        array = _blank_to_null(array)
    return array, None if kept is None else pa.array(kept, type=pa.string())


def _undeclared(values: Cells, blank_free: bool = False) -> pa.Array:
    """A field the spec does not know, as text: JSON for lists and objects, '' as null (as in declared text)."""
    if isinstance(values, pa.Array):
        return values if blank_free else _blank_to_null(values)
    if set(map(type, values)) <= {str, type(None)}:
        return _blank_to_null(pa.array(values, type=pa.string()))
    return _blank_to_null(
        pa.array(
            [_to_json(value) if isinstance(value, (dict, list)) else _to_text(value) for value in values],
            type=pa.string(),
        )
    )


def _table(
    by_name: Mapping[str, Cells],
    count: int,
    columns: Mapping[str, ColumnType],
    not_null: Sequence[str],
    blank_free: Collection[str] = (),
) -> pa.Table:
    """Typed table from each field's values: declared columns in order (a misfit column after its column), then
    undeclared fields sorted by name. A declared column without values is all null. The Arrow strings of the
    `blank_free` fields hold nulls where the answer had empty values."""
    arrays: list[pa.Array] = []
    fields: list[pa.Field] = []
    misfits = 0
    for name, kind in columns.items():
        key = name in not_null
        values = by_name.get(name)
        array, kept = _coerced(name, kind, [None] * count if values is None else values, key, name in blank_free)
        arrays.append(array)
        fields.append(pa.field(name, _ARROW_TYPES[kind], nullable=not key))
        if kept is not None:
            misfits += len(kept) - kept.null_count
            arrays.append(kept)
            fields.append(pa.field(name + MISFIT_SUFFIX, pa.string()))
    for name in sorted(set(by_name) - set(columns)):
        arrays.append(_undeclared(by_name[name], name in blank_free))
        fields.append(pa.field(name, pa.string()))
    if misfits:
        current_monitor().count(misfits=misfits)
    return pa.Table.from_arrays(arrays, schema=pa.schema(fields))


def to_arrow(
    rows: Iterable[Mapping[str, Any]], columns: Mapping[str, ColumnType], not_null: Sequence[str] = ()
) -> pa.Table:
    """Build a typed table column by column; missing keys become null.

    Schema drift is absorbed, never fatal: a field the vendor added lands as a new text column (JSON for lists and
    objects), and a value that no longer fits its declared type is kept verbatim in `<column>__v_text` while the
    typed column gets NULL (counted in the run summary). Key columns must fit: a key that does not is an error.
    """
    rows = list(rows)
    names = [*columns, *sorted({key for row in rows for key in row} - set(columns))]
    return _table({name: [row.get(name) for row in rows] for name in names}, len(rows), columns, not_null)


def rows_to_arrow(
    names: Sequence[str],
    rows: Sequence[Sequence[Any]] | pa.ListArray,
    columns: Mapping[str, ColumnType],
    not_null: Sequence[str] = (),
    constants: Mapping[str, Any] | None = None,
) -> pa.Table:
    """`to_arrow` for answers that send a header and rows of cells: the same table, without a dict per row.

    Each column is picked out of the rows in C and typed by one Arrow call; only a column holding a cell Arrow
    cannot read takes the per-value path. Short rows are padded with nulls, cells beyond `names` are ignored, and
    `constants` (such as the day a page belongs to) fill a column for every row. `rows` may be an Arrow list array
    of strings (`json_rows`): the same table, without a Python object per cell.
    """
    if isinstance(rows, pa.ListArray):
        if not _all_of_width(rows, len(names)):  # short or long rows: the per-row rules below pad and cut them
            return rows_to_arrow(names, rows.to_pylist(), columns, not_null, constants)
        return _rows_from_cells(names, len(rows), rows.flatten(), columns, not_null, constants)
    count = len(rows)
    by_name: dict[str, Cells]
    blank_free: set[str] = set()
    if set(map(len, rows)) <= {len(names)}:
        cells = _string_cells(rows, len(names))
        if cells is not None:
            return _rows_from_cells(names, count, cells, columns, not_null, constants)
        # Not zip(*rows): its iterator per row (10,000 a page) sets off the garbage collector over the heap.
        by_name = {name: list(map(itemgetter(i), rows)) for i, name in enumerate(names)}
    else:
        by_name = dict(zip(names, zip_longest(*rows), strict=False))
        for name in names[len(by_name) :]:  # a header longer than every row
            by_name[name] = [None] * count
    for name, value in (constants or {}).items():
        by_name[name] = [value] * count
        blank_free.discard(name)
    return _table(by_name, count, columns, not_null, blank_free)


def _rows_from_cells(
    names: Sequence[str],
    count: int,
    cells: pa.StringArray,
    columns: Mapping[str, ColumnType],
    not_null: Sequence[str],
    constants: Mapping[str, Any] | None,
) -> pa.Table:
    """`rows_to_arrow` of rows of `len(names)` strings, given as one Arrow array of their cells, row after row."""
    # Empty values become nulls in one pass over every cell, not two calls per column: except in key columns (they
    # keep '') and JSON ones (COERCE reads '' there as a JSON string).
    blank_free = {name for name in names if name not in not_null and columns.get(name) != "json"}
    grid = pa.FixedSizeListArray.from_arrays(cells, len(names))
    nulled = pa.FixedSizeListArray.from_arrays(_blank_to_null(cells), len(names)) if blank_free else grid
    # Each column its own array (list_element copies it out): a slice of one array of the whole page would keep
    # every cell alive, the text of the columns typed since included (measured at 1M sessions).
    by_name: dict[str, Cells] = {
        name: pc.list_element(nulled if name in blank_free else grid, i) for i, name in enumerate(names)
    }
    for name, value in (constants or {}).items():
        by_name[name] = [value] * count
        blank_free.discard(name)
    return _table(by_name, count, columns, not_null, blank_free)


def _all_of_width(rows: pa.ListArray, width: int) -> bool:
    if rows.null_count:
        return False
    lengths = pc.min_max(pc.list_value_length(rows))
    return len(rows) == 0 or (lengths["min"].as_py() == width == lengths["max"].as_py())


def json_rows(
    body: bytes, rows_key: str, strings: Sequence[str] = (), string_lists: Sequence[str] = ()
) -> dict[str, Any] | None:
    """A JSON object's rows of string cells (`rows_key`, a list of lists), `strings` and `string_lists` keys read
    straight into Arrow, every other key skipped: the rows come back as an Arrow list array for `rows_to_arrow`,
    the others as Python values. None when the body is not one such object (a cell that is a number, a key twice,
    broken JSON): the caller's own JSON parser then reads it, and says what is wrong.

    Arrow's JSON reader parses in C++ without holding the GIL and without a Python object per cell: a page of
    1,000 rows x 69 cells took 4.4 ms with orjson and `pa.array`, the GIL held throughout, and takes 4.4 ms on
    one core, 2.5 ms a page on two, while the other threads' HTTP reads and dlt's writes go on."""
    import pyarrow.json as pj

    schema = pa.schema(
        [
            pa.field(rows_key, pa.list_(pa.list_(pa.string()))),
            *(pa.field(key, pa.string()) for key in strings),
            *(pa.field(key, pa.list_(pa.string())) for key in string_lists),
        ]
    )
    try:
        table = pj.read_json(
            pa.BufferReader(body),
            read_options=pj.ReadOptions(block_size=max(len(body), 1) + 1, use_threads=False),
            parse_options=pj.ParseOptions(explicit_schema=schema, unexpected_field_behavior="ignore"),
        )
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError):
        return None
    if table.num_rows != 1:
        return None
    rows = table.column(rows_key).combine_chunks()
    if rows.null_count:
        return None
    answer: dict[str, Any] = {rows_key: rows.flatten()}
    for field in schema:
        if field.name != rows_key:
            answer[field.name] = table.column(field.name)[0].as_py()
    return answer


def _string_cells(rows: Sequence[Sequence[Any]], width: int) -> pa.StringArray | None:
    """A page whose every cell is a string or null, as one Arrow array of its cells row after row: one pass in C
    over all its cells, where picking each column out of the rows and converting it cost a pass per column. None
    when some cell is not a string (the column-by-column path then types it)."""
    if not rows or not width:
        return None
    try:  # read as rows of `width` cells: no flat list of every cell built first (0.26 -> 0.19 s at 100k sessions)
        return pa.array(rows, type=pa.list_(pa.string(), width)).values
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        return None


@dataclass(frozen=True)
class TableSpec:
    """A table's columns and key, declared once: the Arrow schema of its pages and its dlt hints agree."""

    columns: Mapping[str, ColumnType]
    primary_key: tuple[str, ...] = ()
    descriptions: Mapping[str, str] | None = None

    def arrow(self, rows: Iterable[Mapping[str, Any]]) -> pa.Table:
        rows = list(rows)  # a generator's own work (a vendor's requests) is not a conversion
        with _ONE_CONVERSION_AT_A_TIME:
            return to_arrow(rows, self.columns, self.primary_key)

    def arrow_rows(
        self, names: Sequence[str], rows: Sequence[Sequence[Any]], constants: Mapping[str, Any] | None = None
    ) -> pa.Table:
        """The table of a header-and-cells answer, as `arrow` would build it from dicts (see `rows_to_arrow`)."""
        with _ONE_CONVERSION_AT_A_TIME:
            return rows_to_arrow(names, rows, self.columns, self.primary_key, constants)

    def hints(self) -> TTableSchemaColumns:
        return dlt_columns(self.columns, self.primary_key, self.descriptions)


def batched(tables: Iterable[pa.Table], min_rows: int = 10_000) -> Iterator[pa.Table]:
    """Small pages joined into tables of at least `min_rows`: dlt spends milliseconds on each item it extracts,
    which is most of the work for a 100-row page. Pages whose columns differ (a field added mid-run) are joined
    with nulls where a column is missing."""
    pending: list[pa.Table] = []
    rows = 0
    for table in tables:
        pending.append(table)
        rows += table.num_rows
        if rows >= min_rows:
            yield _joined(pending)
            pending, rows = [], 0
    if pending:
        yield _joined(pending)


def _joined(tables: list[pa.Table]) -> pa.Table:
    if len(tables) == 1:
        return tables[0]
    try:
        return pa.concat_tables(tables)
    except pa.ArrowInvalid:  # different columns: align them by name
        return pa.concat_tables(tables, promote_options="default")
