"""Pushing one warehouse table through a target: the part of `push <destination>` every destination shares.

The rows are read in time order (a visitor's hits go out in order) and handed on in pieces, so the first batch
leaves after one batch of rows is built; the ledger lives in `database`: a DuckDB file (the warehouse itself when it
is DuckDB) or the PostgreSQL warehouse the rows come from, in the destination's own schema.
"""

from __future__ import annotations

from collections.abc import Callable, Generator, Iterator, Sequence
from pathlib import Path
from typing import Any

import duckdb

from sources.common.clock import wall_time
from sources.common.errors import ConfigError
from sources.common.tables import TableRows, WarehouseTables, split_table

from .ledger import Ledger, LedgerPlace, LedgerTables, PostgresLedgerPlace
from .push import Pusher, PushOptions, PushSummary, Target

READ_CHUNK_ROWS = 5_000  # rows read from the table at once: memory stays bounded however large it is
BUILD_PIECE_ROWS = 1_000  # rows turned into hits at once


def new_load_id() -> str:
    return f"{wall_time():.6f}"


def push_table_rows(
    database: LedgerPlace,
    table: str,
    *,
    target: Target,
    tables: LedgerTables,
    row_mapping: Any,
    options: PushOptions,
    check_columns: Callable[[Any, Sequence[str], str], None],
    key_columns: Sequence[str] | None = None,
    rows: TableRows | None = None,
    chunk_rows: int = READ_CHUNK_ROWS,
    now: Any = wall_time,
    before: Callable[[Ledger, TableRows], None] | None = None,
) -> PushSummary:
    """Send every row of `table` (DATASET.TABLE) the target has not acknowledged. `before(ledger, rows)` runs
    once the ledger is open, before anything is sent (checks that may refuse the push)."""
    dataset, name = split_table(table)
    if dataset == tables.schema:
        raise ConfigError(f"{table} is the destination's own bookkeeping; push a data table")
    if isinstance(database, PostgresLedgerPlace):
        if rows is None:
            raise ValueError("a ledger in PostgreSQL needs the rows read from the warehouse")
        connection = database.connect()
    else:
        path = Path(database)
        if rows is None and not path.exists():
            raise ConfigError(f"--database {str(path)!r} does not exist")
        connection = duckdb.connect(str(path))
    ledger: Ledger | None = None
    chunks: Iterator[list[dict[str, Any]]] | None = None
    try:
        rows = rows or TableRows.of(WarehouseTables(f"DuckDB file {database}", dataset, connection=connection), name)
        columns = list(rows.columns)
        check_columns(row_mapping, columns, table)
        keys = tuple(key_columns) if key_columns else tuple(c for c in row_mapping.key_columns if c in columns)
        missing = [c for c in (key_columns or ()) if c not in columns]
        if missing:
            raise ConfigError(f"--key column(s) {', '.join(missing)} not in {table}: choose from {', '.join(columns)}")
        order = row_mapping.order_columns(columns)
        order += [c for c in keys if c not in order]
        ledger = Ledger(connection, target.url, new_load_id(), tables)
        if before is not None:
            before(ledger, rows)
        chunks = rows.chunks(order, chunk_rows, piece_rows=BUILD_PIECE_ROWS, first_piece_rows=options.batch_size)
        pusher = Pusher(options, target, ledger, now=now)
        return pusher.push(chunks, row_mapping, table, key_columns=keys, total_rows=rows.total)
    finally:
        # The ledger's cursor, and the reader's while it is part-way through the table, keep the DuckDB file open
        # (for this process, with this configuration) for as long as an error's traceback holds them: closed here,
        # the file is free when the error surfaces.
        if isinstance(chunks, Generator):
            chunks.close()
        if ledger is not None:
            ledger.close()
        connection.close()


def push_mapped(
    database: LedgerPlace,
    table: str,
    *,
    target: Any,
    tables: LedgerTables,
    options: PushOptions,
    mapping_name: str = "default",
    key_columns: Sequence[str] | None = None,
    rows: TableRows | None = None,
    chunk_rows: int = READ_CHUNK_ROWS,
    now: Any = wall_time,
    before: Callable[[Ledger, TableRows], None] | None = None,
) -> PushSummary:
    """`push_table_rows` with a mapping of clickhaul's hit vocabulary (`destinations.matomo.mappings`: the Tracking
    API names every destination reads), the target closed afterwards."""
    from destinations.matomo.mappings import check_columns, mapping

    try:
        return push_table_rows(
            database,
            table,
            target=target,
            tables=tables,
            row_mapping=mapping(mapping_name),
            options=options,
            check_columns=check_columns,
            key_columns=key_columns,
            rows=rows,
            chunk_rows=chunk_rows,
            now=now,
            before=before,
        )
    finally:
        target.close()
        target.reader.close()
