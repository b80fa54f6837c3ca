"""Column naming and cell typing rules (pure functions; the HTTP tests cover them end to end)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sources.webtrekk.tables import (
    analysis_rows,
    analysis_shape,
    export_columns,
    export_table,
    parse_day,
    parse_number,
    snake,
    table_spec,
)


def test_snake_names_are_stable_ascii() -> None:
    assert snake("Category (Text) \u2013 Main category") == "category_text_main_category"
    assert snake("% Page Impressions") == "percent_page_impressions"
    assert snake("Länder") == "laender"
    assert snake("Advertising Media Title*") == "advertising_media_title"
    assert snake("1st page") == "c_1st_page"
    assert snake("") == "column"


def test_export_cells_stay_text_and_a_key_cell_is_never_null() -> None:
    header = ["Pages", "Category (Figure) \u2013 ownC."]
    rows: list[list[Any]] = [["index", 1], [None, ""], ["home"]]
    dated = export_columns(header, ["day"])
    day = dt.date(2025, 1, 2)
    spec = table_spec(dated, {"day": "date"}, ["day", dated[0].name])
    assert export_table(spec, dated, rows, day=day).to_pylist() == [
        {"pages": "index", "category_figure_own_cx": "1", "day": day},
        {"pages": "", "category_figure_own_cx": None, "day": day},
        {"pages": "home", "category_figure_own_cx": None, "day": day},
    ]
    undated = export_columns(header)
    table = export_table(table_spec(undated, {}, []), undated, rows)
    assert table.column("pages").to_pylist() == ["index", None, "home"]


def test_numbers_and_days() -> None:
    assert parse_number("17213") == 17213.0
    assert parse_number("8.15") == 8.15
    assert parse_number("8.15 %") == 8.15
    assert parse_number("-3.3") == -3.3
    assert parse_number("1.234,5") == 1234.5
    assert parse_number("-") is None and parse_number("") is None and parse_number("n/a") is None
    assert parse_day("21.01.2011") == dt.date(2011, 1, 21)
    assert parse_day("2011-01-21 00:00:00") == dt.date(2011, 1, 21)
    assert parse_day("index") is None


def test_the_documents_pivot_example_drops_its_footers() -> None:
    answer = {
        "analysisType": "pivot",
        "analysisTabHead": [
            {"dataType": "string", "title": "Browser", "contentType": "main"},
            {"dataType": "string", "title": "Pages", "contentType": "main"},
            {"dataType": "number", "title": "Page Impressions", "contentType": "normal"},
            {"dataType": "number", "title": "Visitors", "contentType": "normal"},
        ],
        "analysisData": [
            ["Firefox 3.6", "manieren_per_mausklick", "6551", "4616"],
            ["Firefox 3.6", "-", "83160", "15008"],
            ["-", "-", "226857", "42673"],
        ],
    }
    shape = analysis_shape(answer)
    assert [c.name for c in shape.columns] == ["browser", "pages", "page_impressions", "visitors"]
    assert shape.key == ["browser", "pages"] and not shape.rank
    rows = analysis_rows(shape, answer, "-", dt.date(2011, 1, 28))
    assert rows == [
        {
            "browser": "Firefox 3.6",
            "pages": "manieren_per_mausklick",
            "page_impressions": 6551.0,
            "visitors": 4616.0,
            "day": dt.date(2011, 1, 28),
        }
    ]


def test_the_documents_analysis_example_has_a_rank_and_a_share() -> None:
    answer = {
        "analysisType": "analysis",
        "analysisTabHead": [
            {"dataType": "string", "title": "Seiten", "contentType": "main"},
            {"dataType": "number", "title": "Page Impressions", "contentType": "normal"},
            {"dataType": "number", "title": "% Page Impressions", "contentType": "percent"},
        ],
        "analysisTabFoot": [["", "Gesamt", "211165", "100.00"]],
        "analysisData": [["1", "manieren_per_mausklick", "17213", "8.15"], ["2", "index", "10000", "4.74"]],
    }
    shape = analysis_shape(answer, {"analysisObjects": [{"title": "Pages"}], "metrics": ["Page Impressions"]})
    assert shape.rank and [c.name for c in shape.columns] == ["pages", "page_impressions", "page_impressions_percent"]
    assert shape.spec().columns["rank"] == "bigint"
    rows = analysis_rows(shape, answer, "-", dt.date(2011, 1, 20))
    assert [(r["rank"], r["pages"], r["page_impressions_percent"]) for r in rows] == [
        (1.0, "manieren_per_mausklick", 8.15),
        (2.0, "index", 4.74),
    ]
