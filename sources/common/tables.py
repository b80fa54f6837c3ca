"""Reading a table of the warehouse in chunks, from a DuckDB connection or dlt's SQL client of any destination:
what every write-back (`push matomo`, `push webtrekk`) reads its rows with. Where the warehouse is, is the CLI's
rule (`pipelines/warehouse.py`); this module only reads what it is given."""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .errors import ConfigError

if TYPE_CHECKING:
    import pyarrow as pa


def split_table(table: str) -> tuple[str, str]:
    dataset, dot, name = table.partition(".")
    if not dot or not dataset or not name or "." in name:
        raise ConfigError(f"--table {table!r} must be DATASET.TABLE, for example opentracker.sessions")
    return dataset, name


def sql_literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def sql_name(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


class WarehouseTables:
    """One dataset of a warehouse, read with SQL: a DuckDB connection, or dlt's SQL client for any other.
    `where` names the warehouse in messages ("DuckDB file /srv/w.duckdb")."""

    def __init__(self, where: str, dataset: str, connection: Any = None, client: Any = None) -> None:
        self.where = where
        self.dataset = dataset
        self.connection = connection  # duckdb.DuckDBPyConnection for a DuckDB file
        self._client = client

    def qualified(self, table: str) -> str:
        if self._client is not None:
            return str(self._client.make_qualified_table_name(table))
        return f"{sql_name(self.dataset)}.{sql_name(table)}"

    def fetch(self, sql: str) -> list[tuple[Any, ...]]:
        if self._client is not None:
            return list(self._client.execute_sql(sql) or [])
        return list(self.connection.execute(sql).fetchall())

    def columns(self, table: str) -> list[str]:
        return [
            str(row[0])
            for row in self.fetch(
                "select column_name from information_schema.columns where table_schema = "
                f"{sql_literal(self.dataset)} and table_name = {sql_literal(table)} order by ordinal_position"
            )
        ]

    def tables(self) -> list[str]:
        return [
            str(row[0])
            for row in self.fetch(
                "select table_name from information_schema.tables where table_schema = "
                f"{sql_literal(self.dataset)} order by 1"
            )
        ]

    def count(self, table: str) -> int:
        return int(self.fetch(f"select count(*) from {self.qualified(table)}")[0][0])

    def descriptions(self, table: str) -> dict[str, str]:
        """Column descriptions of the dlt schema stored with the data (Webtrekk keeps the vendor's titles there)."""
        if "_dlt_version" not in self.tables():
            return {}
        found = self.fetch(f"select schema from {self.qualified('_dlt_version')} order by inserted_at desc limit 1")
        if not found:
            return {}
        columns = (json.loads(found[0][0]).get("tables", {}).get(table) or {}).get("columns") or {}
        return {name: column["description"] for name, column in columns.items() if column.get("description")}

    def chunks(
        self,
        table: str,
        *,
        columns: Sequence[str] | None = None,
        order: Sequence[str] = (),
        chunk_rows: int = 10_000,
        piece_rows: int | None = None,
        first_piece_rows: int | None = None,
    ) -> Iterator[list[dict[str, Any]]]:
        """The table's rows in `order`, read `chunk_rows` at a time (memory holds one chunk) and handed on in
        pieces of `piece_rows` (the first of `first_piece_rows`): a consumer that works row by row starts after
        a small first piece instead of a whole chunk."""
        listed = ", ".join(sql_name(column) for column in columns) if columns else "*"
        order_sql = f" order by {', '.join(sql_name(column) for column in order)}" if order else ""
        sql = f"select {listed} from {self.qualified(table)}{order_sql}"
        piece = piece_rows or chunk_rows
        first = [max(1, min(first_piece_rows or piece, piece))]

        def pieces(batch: pa.RecordBatch | pa.Table) -> Iterator[list[dict[str, Any]]]:
            start = 0
            while start < batch.num_rows:
                size = first.pop() if first else piece
                yield batch.slice(start, size).to_pylist()
                start += size

        if self._client is None:
            cursor = self.connection.cursor()
            try:
                for batch in cursor.sql(sql).to_arrow_reader(chunk_rows):
                    yield from pieces(batch)
            finally:
                cursor.close()
            return
        import pyarrow as pa

        with self._client.execute_query(sql) as cursor:
            for part in cursor.iter_arrow(chunk_size=chunk_rows):
                if isinstance(part, (pa.Table, pa.RecordBatch)):
                    yield from pieces(part)

    def bounds(self, table: str, column: str) -> tuple[Any, Any]:
        """The smallest and largest value of a column (None, None for an empty table)."""
        found = self.fetch(f"select min({sql_name(column)}), max({sql_name(column)}) from {self.qualified(table)}")
        return (found[0][0], found[0][1]) if found else (None, None)

    def distinct(self, table: str, column: str, limit: int = 100) -> list[Any]:
        """Up to `limit` distinct values of a column, nulls left out."""
        rows = self.fetch(
            f"select distinct {sql_name(column)} from {self.qualified(table)} "
            f"where {sql_name(column)} is not null order by 1 limit {int(limit)}"
        )
        return [row[0] for row in rows]


def table_columns(tables: WarehouseTables, table: str) -> list[str]:
    """The columns of DATASET.TABLE, or one message naming the warehouse and what it holds."""
    columns = tables.columns(table)
    if not columns:
        present = [name for name in tables.tables() if not name.startswith("_dlt")]
        raise ConfigError(
            f"table {tables.dataset}.{table} not found in {tables.where}"
            + (f": dataset {tables.dataset} holds {', '.join(present[:8])}" if present else "")
        )
    return columns


@dataclass
class TableRows:
    """One table as a write-back reads it: its columns, its size, its rows in chunks."""

    tables: WarehouseTables
    table: str
    columns: list[str]
    total: int

    @classmethod
    def of(cls, tables: WarehouseTables, table: str) -> TableRows:
        return cls(tables, table, table_columns(tables, table), tables.count(table))

    def chunks(
        self,
        order: Sequence[str] = (),
        chunk_rows: int = 10_000,
        piece_rows: int | None = None,
        first_piece_rows: int | None = None,
    ) -> Iterator[list[dict[str, Any]]]:
        return self.tables.chunks(
            self.table, order=order, chunk_rows=chunk_rows, piece_rows=piece_rows, first_piece_rows=first_piece_rows
        )

    def descriptions(self) -> dict[str, str]:
        return self.tables.descriptions(self.table)

    def bounds(self, column: str) -> tuple[Any, Any]:
        return self.tables.bounds(self.table, column)

    def distinct(self, column: str, limit: int = 100) -> list[Any]:
        return self.tables.distinct(self.table, column, limit)
