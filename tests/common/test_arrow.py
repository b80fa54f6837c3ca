"""Pages → typed Arrow tables: the schema-drift contract, and the column-wise path for header-and-cells answers
building exactly the table the dict path builds."""

from __future__ import annotations

import datetime as dt
import json
import random
import time
from collections.abc import Iterator
from typing import Any

import pyarrow as pa
import pytest

from sources.common.arrow import ColumnType, TableSpec, json_rows, rows_to_arrow, to_arrow
from sources.common.errors import DataError
from sources.common.monitor import RunMonitor, set_monitor

UTC = dt.UTC
ODD_CELLS: list[Any] = [
    *(None, "", " ", "12", " 12 ", "+12", "-3", "007", "0x10", "1,169", "1.5", "12%", "nan", "1e3", "1_000"),
    *("true", "False", "yes", "0", "2025-01-02", "2025-01-02T10:00:00Z", "2025-1-2", "1700000000123", "--5"),
    *(0, -7, 2**40, 1.0, 2.5, True, dt.date(2025, 1, 2), dt.datetime(2025, 1, 2, 3, 4, 5), {"a": 1}, [1, 2], "ä"),
]
KINDS: list[ColumnType] = ["text", "bigint", "double", "bool", "date", "timestamp", "json"]


@pytest.fixture
def monitor() -> Iterator[RunMonitor]:
    fresh = RunMonitor()
    previous = set_monitor(fresh)
    try:
        yield fresh
    finally:
        set_monitor(previous)


def test_drift_lands_as_text_and_misfits_keep_their_text(monitor: RunMonitor) -> None:
    spec = TableSpec({"id": "text", "visits": "bigint", "label": "text"}, ("id",))
    table = spec.arrow_rows(
        ["id", "visits", "label", "added"],
        [["a", "3", "", {"x": 1}], ["", "3 visits", "b", "new"], ["c", None, None, None]],
    )
    assert table.schema.names == ["id", "visits", "visits__v_text", "label", "added"]
    assert not table.schema.field("id").nullable
    assert table.to_pylist() == [
        {"id": "a", "visits": 3, "visits__v_text": None, "label": None, "added": '{"x": 1}'},
        {"id": "", "visits": None, "visits__v_text": "3 visits", "label": "b", "added": "new"},
        {"id": "c", "visits": None, "visits__v_text": None, "label": None, "added": None},
    ]
    assert monitor.misfits == 1


def test_a_key_that_does_not_fit_is_an_error() -> None:
    with pytest.raises(DataError, match="key column 'day'"):
        rows_to_arrow(["day"], [["2025-01-02"], ["yesterday"]], {"day": "date"}, ["day"])


def test_cells_arrow_would_misread_take_the_tolerant_path() -> None:
    columns: dict[str, ColumnType] = {"n": "bigint", "share": "double", "at": "timestamp"}
    table = rows_to_arrow(
        ["n", "share", "at"],
        [["0x10", "12%", "1700000000123"], ["1,169", "1.5", "2025-01-02T10:00:00Z"]],
        columns,
    )
    assert table.column("n").to_pylist() == [None, 1169]  # not 16: COERCE does not read hex
    assert table.column("n__v_text").to_pylist() == ["0x10", None]
    assert table.column("share").to_pylist() == [0.12, 1.5]
    assert table.column("at").to_pylist() == [
        dt.datetime(2023, 11, 14, 22, 13, 20, 123000, tzinfo=UTC),
        dt.datetime(2025, 1, 2, 10, tzinfo=UTC),
    ]


def test_ragged_rows_are_padded_or_cut_and_constants_fill_their_column() -> None:
    columns: dict[str, ColumnType] = {"a": "bigint", "b": "text", "day": "date"}
    day = dt.date(2025, 1, 2)
    table = rows_to_arrow(["a", "b"], [["1"], ["2", "x", "beyond the header"], []], columns, constants={"day": day})
    assert table.to_pylist() == [
        {"a": 1, "b": None, "day": day},
        {"a": 2, "b": "x", "day": day},
        {"a": None, "b": None, "day": day},
    ]
    empty = rows_to_arrow(["a", "b", "added"], [], columns, constants={"day": day})  # the header still names them
    assert empty.num_rows == 0
    assert empty.schema == pa.schema(
        [("a", pa.int64()), ("b", pa.string()), ("day", pa.date32()), ("added", pa.string())]
    )


@pytest.mark.parametrize("seed", range(5))
def test_rows_and_dicts_build_the_same_table(seed: int) -> None:
    """Whatever the cells (homogeneous columns take the vectorised path, mixed ones the per-value one)."""
    rng = random.Random(seed)
    for _ in range(300):
        columns = {f"c{index}": rng.choice(KINDS) for index in range(3)}
        key = [name for name in columns if rng.random() < 0.2]
        names = [*columns, "added"]
        pool = rng.sample(ODD_CELLS, rng.choice([1, 2, len(ODD_CELLS)]))
        rows = [[rng.choice(pool) for _ in names] for _ in range(rng.choice([1, 2, 5]))]
        try:
            expected = to_arrow([dict(zip(names, row, strict=True)) for row in rows], columns, key)
        except DataError:
            with pytest.raises(DataError):
                rows_to_arrow(names, rows, columns, key)
            continue
        table = rows_to_arrow(names, rows, columns, key)
        assert table.schema == expected.schema, (columns, key, rows)
        assert repr(table.to_pylist()) == repr(expected.to_pylist()), (columns, key, rows)  # NaN != NaN: by repr


TEXT_CELLS: list[str | None] = [
    *(None, "", " ", "12", "1,169", "1700000000123", "2025-01-02", "true", "ä", "日本", "😀", "tab\tand\nline"),
    *('quote " and \\ backslash', "\u0000", "</script>", "x" * 300),
]


@pytest.mark.parametrize("seed", range(5))
def test_rows_read_by_arrows_json_reader_build_the_same_table_as_parsed_rows(seed: int) -> None:
    """`json_rows` + `rows_to_arrow` equal orjson + `rows_to_arrow`, ragged rows and escapes included."""
    rng = random.Random(seed)
    for _ in range(200):
        columns = {f"c{index}": rng.choice(KINDS) for index in range(3)}
        key = [name for name in columns if rng.random() < 0.2]
        names = [*columns, "added"]
        rows = [
            [rng.choice(TEXT_CELLS) for _ in range(len(names) + rng.choice([0, 0, 0, -1, 1]))]
            for _ in range(rng.choice([0, 1, 2, 5]))
        ]
        body = json.dumps(
            {"rows": len(rows), "field": names, "resultsList": rows, "next": "1.2"}, ensure_ascii=rng.random() < 0.5
        )
        answer = json_rows(body.encode(), "resultsList", strings=("next",), string_lists=("field",))
        assert answer is not None and answer["field"] == names and answer["next"] == "1.2"
        assert answer["resultsList"].to_pylist() == rows
        try:
            expected = rows_to_arrow(names, rows, columns, key)
        except DataError:
            with pytest.raises(DataError):
                rows_to_arrow(names, answer["resultsList"], columns, key)
            continue
        table = rows_to_arrow(names, answer["resultsList"], columns, key)
        assert table.schema == expected.schema, (columns, key, rows)
        assert repr(table.to_pylist()) == repr(expected.to_pylist()), (columns, key, rows)


@pytest.mark.parametrize(
    "body",
    [
        b'{"resultsList": [["a", 12]]}',  # a number: the caller's parser types it
        b'{"resultsList": [["a", true]]}',
        b'{"resultsList": [["a", {"k": "v"}]]}',
        b'{"resultsList": [["a"]], "resultsList": [["b"]]}',  # a key twice
        b'{"resultsList": [["a"]]',  # cut
        b'{"resultsList": [["a"]]} {"resultsList": []}',  # two objects
        b'[["a"]]',
        b'{"other": 1}',  # no rows
        b'{"resultsList": null}',
        b'{"resultsList": [["a"]], "next": 7}',  # a declared string that is a number
        b"",
    ],
)
def test_json_rows_leaves_anything_but_rows_of_strings_to_the_callers_parser(body: bytes) -> None:
    assert json_rows(body, "resultsList", strings=("next",)) is None


def test_json_rows_skips_the_keys_it_was_not_asked_for_whatever_their_types() -> None:
    body = b'{"expand": [["filterByVisitId", "", "", 1]], "rowsPerPageOptions": [20, 40], "resultsList": [["a"]]}'
    answer = json_rows(body, "resultsList", strings=("nextToken",))
    assert answer is not None and answer["nextToken"] is None
    assert answer["resultsList"].to_pylist() == [["a"]]


def test_batched_joins_small_pages_and_aligns_a_column_added_mid_run() -> None:
    from sources.common.arrow import batched

    pages = [pa.table({"a": list(range(i * 3, i * 3 + 3))}) for i in range(7)]
    pages.insert(4, pa.table({"a": [100], "added": ["x"]}))
    tables = list(batched(pages, min_rows=10))
    assert [table.num_rows for table in tables] == [12, 10]  # each at least 10 rows, the rest as it comes
    joined = pa.concat_tables(tables, promote_options="default")
    assert sorted(joined.column("a").to_pylist()) == sorted([*range(21), 100])
    assert joined.column("added").to_pylist().count("x") == 1 and joined.column("added").null_count == 21


def test_pages_read_by_several_workers_are_converted_one_at_a_time(monkeypatch: pytest.MonkeyPatch) -> None:
    """Parallel conversions only trade the GIL back and forth; workers keep their own network reads."""
    from concurrent.futures import ThreadPoolExecutor

    import sources.common.arrow as arrow

    inside, most = 0, 0
    real_rows, real_dicts = arrow.rows_to_arrow, arrow.to_arrow

    def counted(convert: Any) -> Any:
        def wrapper(*args: Any, **kwargs: Any) -> pa.Table:
            nonlocal inside, most
            inside += 1
            most = max(most, inside)
            time.sleep(0.005)  # long enough for another worker to arrive
            try:
                return convert(*args, **kwargs)
            finally:
                inside -= 1

        return wrapper

    monkeypatch.setattr(arrow, "rows_to_arrow", counted(real_rows))
    monkeypatch.setattr(arrow, "to_arrow", counted(real_dicts))
    spec = TableSpec({"id": "bigint", "name": "text"}, primary_key=("id",))

    def convert(page: int) -> int:
        rows = [[str(page * 100 + i), f"n{i}"] for i in range(100)]
        by_cells = spec.arrow_rows(["id", "name"], rows)
        by_dicts = spec.arrow({"id": page * 100 + i, "name": f"n{i}"} for i in range(100))
        assert by_cells.equals(by_dicts)
        return int(sum(by_cells.column("id").to_pylist()))

    with ThreadPoolExecutor(4) as pool:
        totals = list(pool.map(convert, range(24)))
    assert totals == [sum(range(page * 100, page * 100 + 100)) for page in range(24)]
    assert most == 1
