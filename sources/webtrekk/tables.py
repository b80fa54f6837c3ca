"""Turning Webtrekk answers into typed tables: export header rows and analysis table heads become columns.

Column names are snake_case; the vendor's original (often localised) title is kept as the column description.
"""

from __future__ import annotations

import datetime as dt
import re
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
from dlt.common.normalizers.naming.snake_case import NamingConvention

from sources.common.arrow import ColumnType, TableSpec

_NAMING = NamingConvention()
_GERMAN = str.maketrans({"ä": "ae", "ö": "oe", "ü": "ue", "ß": "ss", "Ä": "Ae", "Ö": "Oe", "Ü": "Ue"})
_DOTTED_DATE = re.compile(r"^(\d{2})\.(\d{2})\.(\d{4})$")
# Analysis objects whose values are days: with one of these, a single request covers many days.
TIME_OBJECTS = frozenset({"Days", "Day", "Tage", "Tag", "Jours", "Días"})


def snake(title: str, fallback: str = "column") -> str:
    """A column name dlt keeps as it is: ASCII snake_case, `%` spelled out, never starting with `_` or a digit."""
    text = unicodedata.normalize("NFKD", title.translate(_GERMAN)).encode("ascii", "ignore").decode()
    text = text.replace("%", " percent ").replace("*", " ").replace("#", " number ")
    name = re.sub(r"_+", "_", _NAMING.normalize_identifier(text.strip() or fallback)).strip("_") or fallback
    if name[0].isdigit():
        name = f"c_{name}"
    return name


def unique_names(names: Sequence[str]) -> list[str]:
    seen: dict[str, int] = {}
    result = []
    for name in names:
        count = seen.get(name, 0) + 1
        seen[name] = count
        result.append(name if count == 1 else f"{name}_{count}")
    return result


def parse_day(value: Any) -> dt.date | None:
    """`DD.MM.YYYY` (the analyses' date cells) or ISO dates."""
    if value is None:
        return None
    text = str(value).strip()
    if not text:
        return None
    match = _DOTTED_DATE.match(text)
    if match:
        return dt.date(int(match[3]), int(match[2]), int(match[1]))
    try:
        return dt.date.fromisoformat(text[:10])
    except ValueError:
        return None


def parse_number(value: Any) -> float | None:
    """Analyses send numbers as strings ("17213", "8.15", "-3.3"); a percent sign stays percentage points."""
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return float(value)
    text = str(value).strip().replace("%", "").replace("\u00a0", "").replace(" ", "")
    if not text or text == "-":
        return None
    if re.fullmatch(r"-?\d{1,3}(\.\d{3})+,\d+|-?\d+,\d+", text):  # German formatting, should it ever appear
        text = text.replace(".", "").replace(",", ".")
    else:
        text = text.replace(",", "")
    try:
        return float(text)
    except ValueError:
        return None


@dataclass(frozen=True)
class Column:
    name: str
    title: str
    kind: ColumnType
    main: bool = False


def table_spec(columns: Sequence[Column], extra: Mapping[str, ColumnType], key: Sequence[str]) -> TableSpec:
    kinds: dict[str, ColumnType] = {**extra, **{column.name: column.kind for column in columns}}
    descriptions = {column.name: column.title for column in columns if column.title}
    return TableSpec(kinds, tuple(key), descriptions)


# -- exports -----------------------------------------------------------------------------------------------
def export_columns(header: Sequence[str], reserved: Sequence[str] = ()) -> list[Column]:
    """Every export cell stays text: the export is category data, and it must round-trip through importData."""
    names = unique_names([*reserved, *(snake(title) for title in header)])[len(reserved) :]
    return [
        Column(name, title, "text", main=index == 0)
        for index, (name, title) in enumerate(zip(names, header, strict=False))
    ]


def export_table(spec: TableSpec, columns: Sequence[Column], rows: Sequence[Sequence[Any]], **stamp: Any) -> pa.Table:
    """One exportData page as a typed table, built column-wise from the answer's cells (exports run to millions of
    rows); `stamp` (day, parameter title) fills its columns. A missing first cell is '' when it is part of the key."""
    table = spec.arrow_rows([column.name for column in columns], rows, stamp)
    if columns and columns[0].name in spec.primary_key:
        first = table.schema.get_field_index(columns[0].name)
        table = table.set_column(first, table.schema.field(first), pc.fill_null(table.column(first), ""))
    return table


# -- analyses ----------------------------------------------------------------------------------------------
def _titles(items: Sequence[Any]) -> list[tuple[str, str]]:
    """(title, column title) of configured analysis objects or metrics; an alias renames the column."""
    found = []
    for item in items or ():
        if isinstance(item, str):
            found.append((item, item))
        elif isinstance(item, Mapping):
            title = str(item.get("title") or "")
            found.append((title, str(item.get("alias") or title)))
    return found


@dataclass
class AnalysisShape:
    """How one analysis answer maps to columns: rank cell or not, the columns, which hold the day and the key."""

    columns: list[Column]
    rank: bool
    day_column: str | None
    key: list[str]

    def spec(self) -> TableSpec:
        extra: dict[str, ColumnType] = {"day": "date"}
        if self.rank:
            extra["rank"] = "bigint"
        return table_spec(self.columns, extra, ["day", *self.key])


def analysis_shape(answer: Mapping[str, Any], config: Mapping[str, Any] | None = None) -> AnalysisShape:
    head = [entry for entry in answer.get("analysisTabHead") or [] if isinstance(entry, Mapping)]
    data = answer.get("analysisData") or []
    rank = bool(data) and isinstance(data[0], list) and len(data[0]) == len(head) + 1
    objects = _titles((config or {}).get("analysisObjects") or [])
    metrics = _titles((config or {}).get("metrics") or [])
    mains = [entry for entry in head if entry.get("contentType") == "main"]
    normals = [entry for entry in head if entry.get("contentType") not in ("main", "percent")]
    use_objects = bool(objects) and len(objects) == len(mains)
    use_metrics = bool(metrics) and len(metrics) == len(normals)
    columns_raw: list[tuple[str, str, ColumnType, bool]] = []
    main_index = metric_index = 0
    previous_metric = "value"
    metric_names: dict[str, str] = {}
    for position, entry in enumerate(head):
        title = str(entry.get("title") or "")
        content = entry.get("contentType")
        is_number = entry.get("dataType") == "number"
        if content == "main":
            object_title, column_title = objects[main_index] if use_objects else (title, title)
            main_index += 1
            values = [row[position + rank] for row in data if isinstance(row, list) and len(row) > position + rank]
            is_day = object_title in TIME_OBJECTS or _all_days(values)
            columns_raw.append((snake(column_title), title, "date" if is_day else "text", True))
        elif content == "percent":
            # "% Page Impressions": the share of that metric's column, whatever order the head lists them in
            share_of = title.strip().lstrip("%").strip()
            metric_name = metric_names.get(share_of, snake(share_of, previous_metric))
            columns_raw.append((f"{metric_name}_percent", title, "double", False))
        else:
            metric_title = metrics[metric_index][1] if use_metrics else title
            metric_index += 1
            previous_metric = snake(metric_title)
            metric_names[title] = previous_metric
            columns_raw.append((previous_metric, title, "double" if is_number else "text", False))
    reserved = ["day", "rank"] if rank else ["day"]
    names = unique_names([*reserved, *(raw[0] for raw in columns_raw)])[len(reserved) :]
    columns = [Column(name, raw[1], raw[2], raw[3]) for name, raw in zip(names, columns_raw, strict=True)]
    main_columns = [column for column in columns if column.main]
    if not main_columns:  # scorecards: the first text column ("Key figure") names each row
        main_columns = [column for column in columns if column.kind == "text"][:1]
    day_column = next((column.name for column in main_columns if column.kind == "date"), None)
    key = [column.name for column in main_columns if column.name != day_column]
    return AnalysisShape(columns, rank, day_column, key)


def _all_days(values: Sequence[Any]) -> bool:
    texts = [str(value).strip() for value in values if value not in (None, "")]
    return bool(texts) and all(_DOTTED_DATE.match(text) for text in texts)


def analysis_rows(
    shape: AnalysisShape, answer: Mapping[str, Any], footer: str, day: dt.date | None
) -> list[dict[str, Any]]:
    """Data rows without footers, typed; `day` from the date column when there is one, else the window's day."""
    rows = []
    main_positions = [index for index, column in enumerate(shape.columns) if column.main]
    for raw in answer.get("analysisData") or []:
        if not isinstance(raw, list):
            continue
        cells = raw[1:] if shape.rank else raw
        if any(index < len(cells) and str(cells[index]).strip() == footer for index in main_positions):
            continue  # a subtotal or total row
        record: dict[str, Any] = {}
        if shape.rank:
            record["rank"] = parse_number(raw[0])
        for column, value in zip(shape.columns, cells, strict=False):
            if column.kind == "date":
                record[column.name] = parse_day(value)
            elif column.kind == "double":
                record[column.name] = parse_number(value)
            else:
                record[column.name] = "" if value is None else str(value)
        record["day"] = record.get(shape.day_column) if shape.day_column else day
        if record["day"] is None:
            continue
        rows.append(record)
    return rows


SCORECARD_SERIES = TableSpec(
    {"day": "date", "date": "date", "score": "double", "scorecard_value": "double"},
    ("day", "date"),
    {"date": "scorecardData date", "score": "scorecardData score", "scorecard_value": "scorecardValue"},
)
KPI_VALUES = TableSpec(
    {"day": "date", "label": "text", "value": "double"}, ("day", "label"), {"label": "kpiData label"}
)


def analysis_extras(answer: Mapping[str, Any], day: dt.date) -> list[tuple[str, TableSpec, list[dict[str, Any]]]]:
    """The parts beside the table: a scorecard's chart series (`scorecardData`) and a status analysis' `kpiData`
    (average, total: localised labels), as (table suffix, spec, rows)."""
    extras: list[tuple[str, TableSpec, list[dict[str, Any]]]] = []
    scorecard = answer.get("scorecardData")
    if isinstance(scorecard, Mapping):
        value = parse_number(scorecard.get("scorecardValue"))
        series: list[dict[str, Any]] = [
            {"day": day, "date": parse_day(cells[0]), "score": parse_number(cells[1]), "scorecard_value": value}
            for cells in scorecard.get("analysisData") or []
            if isinstance(cells, list) and len(cells) >= 2 and parse_day(cells[0]) is not None
        ]
        extras.append(("series", SCORECARD_SERIES, series))
    kpi = answer.get("kpiData")
    if isinstance(kpi, list):
        rows: list[dict[str, Any]] = [
            {"day": day, "label": str(cells[0]), "value": parse_number(cells[1])}
            for cells in kpi
            if isinstance(cells, list) and len(cells) >= 2
        ]
        extras.append(("kpi_values", KPI_VALUES, rows))
    return extras
