"""Mapp Analytics results as tables: columns from the result's headers, typed from the object catalogue
(/query-objects), total and subtotal rows dropped, keyed by the dimension columns plus the window."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import dlt
from dlt.extract.hints import make_hints

from sources.common.arrow import ColumnType, TableSpec
from sources.common.windows import DateWindow

from ..tables import snake, unique_names
from .settings import TOTAL_MARKER


@dataclass(frozen=True)
class ObjectInfo:
    name: str
    metric: bool
    data_type: str
    title: str
    time_format: str | None


def object_catalogue(answer: Mapping[str, Any]) -> dict[str, ObjectInfo]:
    found: dict[str, ObjectInfo] = {}
    for group, metric in (("dimensions", False), ("metrics", True)):
        for item in answer.get(group) or []:
            if isinstance(item, Mapping) and item.get("name"):
                found[str(item["name"])] = ObjectInfo(
                    str(item["name"]),
                    metric,
                    str(item.get("dataType") or "GENERIC").upper(),
                    str(item.get("title") or ""),
                    item.get("timeFormatPattern"),
                )
    return found


def _column_type(info: ObjectInfo | None, metric: bool) -> ColumnType:
    if info is None:
        return "double" if metric else "text"
    if not metric and info.time_format and info.time_format.replace("-", "") == "yyyyMMdd":
        return "date"
    if info.data_type == "NUMBER":
        return "double"
    if metric and info.data_type == "GENERIC":
        return "double"
    return "text"


def _cell(value: Any, kind: ColumnType) -> Any:
    if value is None:
        return None
    if kind == "date":
        text = str(value).strip().replace("-", "")[:8]
        return dt.date(int(text[:4]), int(text[4:6]), int(text[6:8])) if len(text) == 8 and text.isdigit() else None
    if kind == "double" and isinstance(value, str):
        text = value.strip().replace(",", "")
        return float(text) if text else None
    return value


@dataclass(frozen=True)
class ResultShape:
    spec: TableSpec
    sources: tuple[tuple[int, str, ColumnType], ...]  # (position in the row, column name, type)
    dimensions: tuple[int, ...]


def result_shape(result: Mapping[str, Any], objects: Mapping[str, ObjectInfo]) -> ResultShape:
    """Columns from the result's headers (snake_case of the API name; name and title kept as the description),
    typed from /query-objects; the key is every dimension column plus the window."""
    headers = [h for h in result.get("headers") or [] if isinstance(h, Mapping)]
    names = unique_names([snake(str(h.get("name") or h.get("alias") or "column")) for h in headers])
    names = [f"{name}_value" if name in ("window_start", "window_end") else name for name in names]
    columns: dict[str, ColumnType] = {}
    descriptions: dict[str, str] = {}
    sources: list[tuple[int, str, ColumnType]] = []
    dimensions: list[int] = []
    for position, (header, name) in enumerate(zip(headers, names, strict=True)):
        api_name = str(header.get("name") or "")
        info = objects.get(api_name)
        metric = bool(header.get("metric")) if "metric" in header else bool(info and info.metric)
        kind = _column_type(info, metric)
        columns[name] = kind
        title = info.title if info else ""
        descriptions[name] = f"{api_name} ({title})" if title else api_name
        sources.append((position, name, kind))
        if not metric:
            dimensions.append(position)
    columns["window_start"] = "date"
    columns["window_end"] = "date"
    descriptions["window_start"] = "first day of the window this row was calculated for"
    descriptions["window_end"] = "last day of the window (inclusive)"
    key = (*(names[p] for p in dimensions), "window_start", "window_end")
    return ResultShape(TableSpec(columns, key, descriptions), tuple(sources), tuple(dimensions))


def result_rows(
    result: Mapping[str, Any], shape: ResultShape, window: DateWindow, kpi: bool = False
) -> list[dict[str, Any]]:
    """Data rows only: rows listed in any header's `sumPositions` and rows with a null dimension cell (totals and
    subtotals) are dropped. A KPI's single Total row is its value and is kept."""
    totals: set[int] = set()
    for header in result.get("headers") or []:
        if isinstance(header, Mapping):
            totals.update(int(p) for p in header.get("sumPositions") or [] if isinstance(p, int))
    rows: list[dict[str, Any]] = []
    data = [cells for cells in result.get("rows") or [] if isinstance(cells, list)]
    # A KPI answers one Total row (dimension "0000000000"): that row is the figure, not a total to drop.
    kpi = kpi or (
        bool(data)
        and bool(shape.dimensions)
        and all(cells[p] == TOTAL_MARKER for cells in data for p in shape.dimensions)
    )
    for index, cells in enumerate(data):
        if not kpi and (index in totals or any(cells[p] is None or cells[p] == TOTAL_MARKER for p in shape.dimensions)):
            continue
        row = {name: _cell(cells[p] if p < len(cells) else None, kind) for p, name, kind in shape.sources}
        row["window_start"] = window.start
        row["window_end"] = window.end
        rows.append(row)
    return rows


def page(spec: TableSpec, rows: list[dict[str, Any]], **hints: Any) -> Any:
    return dlt.mark.with_hints(spec.arrow(rows), make_hints(columns=spec.hints(), **hints))


def element_table(element: str) -> str:
    """Elements are known by id (a number) in the answers: `element_11`, or the snake_case of a textual id."""
    name = snake(element, "element")
    return f"element_{element}" if element.isdigit() else name
