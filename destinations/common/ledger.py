"""What a destination keeps beside the data, in the warehouse (a DuckDB file, or the PostgreSQL database the table
is read from, so any worker can continue a push another started), one schema per destination, e.g. `matomo`,
`umami`, `pirsch`; `<d>` below is the destination's name:

- `<d>_ledger`: one row per batch the destination holds: acknowledged by its answer, or found stored by reading
  the destination back after an unknown outcome (`found_stored` hits of it, `reconciled`);
- `<d>_ledger_hits`: the hit ids of those batches. A hit id is a hash of the target, the source table, the
  row's identity and the hit's position in the row, so it is the same in every run: hits the destination holds are
  never sent again, even when a later run groups them into different batches;
- `<d>_ledger_in_flight`: a batch from just before it is sent until its outcome is known, with its hit ids and
  requests: after a crash the next run finds it here and asks the destination which of its hits it holds;
- `<d>_rejected`: every hit that was not sent (client validation) or that the destination reported invalid (or
  dropped), with the source row, the reason and the load id: the dead-letter table.

A batch enters `<d>_ledger_in_flight` when it is queued to a worker, before it is sent; once its outcome is
known, it leaves flight and what the destination holds of it enters the ledger, in one transaction. Until then a
crash leaves it in flight, and the next run reads it back.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa

from sources.common.clock import utc_now, wall_time


@dataclass(frozen=True)
class LedgerTables:
    """Where one destination keeps its ledger: a schema of its own and four tables named after it."""

    schema: str

    @property
    def batches(self) -> str:
        return f"{self.schema}_ledger"

    @property
    def hits(self) -> str:
        return f"{self.schema}_ledger_hits"

    @property
    def in_flight(self) -> str:
        return f"{self.schema}_ledger_in_flight"

    @property
    def rejected(self) -> str:
        return f"{self.schema}_rejected"

    def qualified(self, table: str) -> str:
        return f'"{self.schema}"."{table}"'


@dataclass(frozen=True)
class PostgresLedgerPlace:
    """A ledger kept in a PostgreSQL database: `connect()` opens a DB-API (psycopg2) connection to it."""

    connect: Callable[[], Any]
    where: str  # how the summary names it, never with the password

    def __str__(self) -> str:
        return self.where


LedgerPlace = str | Path | PostgresLedgerPlace


@dataclass(frozen=True)
class Rejection:
    source: str
    origin: str  # "client" (never sent) or "server" (the destination reported it invalid or dropped it)
    reason: str
    hit_id: str | None
    row: str  # the source row as JSON
    request: str | None  # the query string that was sent, for server rejections


@dataclass(frozen=True)
class Acknowledgement:
    batch_hash: str
    hit_ids: Sequence[str]  # the hits the destination holds (or reported invalid) of this batch
    source: str
    tracked: int
    invalid: int
    lost_answers: int  # attempts of this batch whose answer never came
    found_stored: int = 0  # hits found stored by reading the destination back, not acknowledged by an answer
    reconciled: bool = False


@dataclass(frozen=True)
class Flight:
    """A batch on its way: recorded before it is sent, settled when its outcome is known."""

    flight_id: str
    source: str
    sent_at: float  # wall_time() when it was recorded (queued to a worker), not sent
    hit_ids: Sequence[str]
    requests: Sequence[str]


class Ledger:
    """On a DuckDB connection, or a psycopg2 one (autocommit: each statement or `begin ... commit` is atomic)."""

    def __init__(self, connection: Any, target: str, load_id: str, tables: LedgerTables) -> None:
        self.tables = tables
        self._batches = tables.qualified(tables.batches)
        self._hits = tables.qualified(tables.hits)
        self._in_flight = tables.qualified(tables.in_flight)
        self._rejected = tables.qualified(tables.rejected)
        self.target = target
        self.load_id = load_id
        self._postgres = not isinstance(connection, duckdb.DuckDBPyConnection)
        if self._postgres:
            connection.autocommit = True
        self._cursor = connection.cursor()
        self._lock = threading.Lock()
        self._known = False
        self._flights = 0
        self._setup()

    @classmethod
    @contextmanager
    def open(cls, place: LedgerPlace, target: str, load_id: str, tables: LedgerTables) -> Iterator[Ledger]:
        connection = place.connect() if isinstance(place, PostgresLedgerPlace) else duckdb.connect(str(place))
        try:
            ledger = cls(connection, target, load_id, tables)
            try:
                yield ledger
            finally:
                ledger.close()  # its cursor would keep the file open while a traceback holds the ledger
        finally:
            connection.close()

    def _run(self, sql: str, parameters: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        """One statement with `?` parameters in either database; its rows (none for a statement without)."""
        if self._postgres:
            self._cursor.execute(sql.replace("?", "%s"), tuple(parameters))
        else:
            self._cursor.execute(sql, list(parameters))
        return list(self._cursor.fetchall()) if self._cursor.description else []

    def _setup(self) -> None:
        """The ledger's tables, created in one transaction (one commit: this is on the way to the first batch)."""
        statements = [
            f'create schema if not exists "{self.tables.schema}"',
            f"create table if not exists {self._batches} (batch_hash varchar, target varchar, "
            "source varchar, load_id varchar, hits integer, tracked integer, invalid integer, lost_answers integer, "
            "acknowledged_at timestamptz)",
            # Ledgers written before reconciliation existed get the new columns (NULL for their old rows).
            f"alter table {self._batches} add column if not exists found_stored integer",
            f"alter table {self._batches} add column if not exists reconciled boolean",
            f"create table if not exists {self._hits} (hit_id varchar, batch_hash varchar)",
            f"create table if not exists {self._in_flight} (flight_id varchar, target varchar, source varchar, "
            "load_id varchar, sent_at double precision, hit_ids varchar, requests varchar)",
            f"create table if not exists {self._rejected} (load_id varchar, rejected_at timestamptz, "
            "source varchar, origin varchar, reason varchar, hit_id varchar, row json, request varchar)",
        ]
        if self._postgres:  # indexes: PostgreSQL has no zone maps, and the ledger grows with every push
            statements += [
                f"create index if not exists {self.tables.hits}_hit_id on {self._hits} (hit_id)",
                f"create index if not exists {self.tables.in_flight}_source on {self._in_flight} (target, source)",
            ]
        for attempt in range(3):
            try:
                with self._lock, self._transaction():
                    for statement in statements:
                        self._run(statement)
                return
            except Exception:  # PostgreSQL: another push creating the same schema or table at this moment
                if not self._postgres or attempt == 2:
                    raise

    @contextmanager
    def _transaction(self) -> Iterator[None]:
        self._run("begin transaction")
        try:
            yield
        except BaseException:
            self._run("rollback")
            raise
        self._run("commit")

    def knows(self, source: str) -> bool:
        """Has anything of `source` been sent to this target from this ledger: acknowledged, or left in flight?"""
        with self._lock:
            found = self._run(
                f"select (select count(*) from {self._batches} where target = ? and source = ?) + "
                f"(select count(*) from {self._in_flight} where target = ? and source = ?)",
                [self.target, source, self.target, source],
            )
        return bool(found[0][0])

    def prepare(self, source: str) -> None:
        """Before pushing `source`: has any of its hits been acknowledged for this target? If not (a first push),
        no chunk needs to be checked against the ledger."""
        with self._lock:
            found = self._run(
                f"select count(*) from {self._batches} where target = ? and source = ?", [self.target, source]
            )
        self._known = bool(found[0][0])

    def acknowledged(self, hit_ids: Sequence[str]) -> set[str]:
        """Which of these hits the destination already acknowledged (in this run or an earlier one)."""
        if not self._known or not hit_ids:
            return set()
        if self._postgres:
            with self._lock:
                rows = self._run(f"select hit_id from {self._hits} where hit_id = any(?)", [list(hit_ids)])
            return {row[0] for row in rows}
        chunk = pa.table({"hit_id": pa.array(hit_ids, pa.string())})
        with self._lock:
            self._cursor.register("ledger_chunk_ids", chunk)
            try:
                rows = self._cursor.execute(
                    f"select hit_id from ledger_chunk_ids where hit_id in (select hit_id from {self._hits})"
                ).fetchall()
            finally:
                self._cursor.unregister("ledger_chunk_ids")
        return {row[0] for row in rows}

    def launch(self, source: str, hit_ids: Sequence[str], requests: Sequence[str]) -> Flight:
        """Record a batch as in flight, before it is sent: a crash from here on leaves it for the next run."""
        with self._lock:
            self._flights += 1
            flight = Flight(f"{self.load_id}/{self._flights}", source, wall_time(), hit_ids, requests)
            self._run(
                f"insert into {self._in_flight} values (?, ?, ?, ?, ?, ?, ?)",
                [flight.flight_id, self.target, source, self.load_id, flight.sent_at, "\n".join(hit_ids),
                 "\n".join(requests)],
            )  # fmt: skip
        return flight

    def in_flight(self, source: str) -> list[Flight]:
        """Batches of `source` to this target whose outcome a crashed (or failed) run never learnt, oldest first."""
        with self._lock:
            rows = self._run(
                f"select flight_id, sent_at, hit_ids, requests from {self._in_flight} where target = ? and source = ? "
                "order by sent_at",
                [self.target, source],
            )
        return [Flight(row[0], source, row[1], row[2].split("\n"), row[3].split("\n")) for row in rows]

    def settle(self, flight: Flight, ack: Acknowledgement | None) -> None:
        """In one transaction: the batch leaves flight and what the destination holds of it enters the ledger."""
        now = utc_now()
        split = "string_to_array" if self._postgres else "string_split"
        with self._lock, self._transaction():
            self._run(f"delete from {self._in_flight} where flight_id = ?", [flight.flight_id])
            if ack is not None and ack.hit_ids:
                self._run(
                    f"insert into {self._batches} (batch_hash, target, source, load_id, hits, tracked, invalid, "
                    "lost_answers, acknowledged_at, found_stored, reconciled) values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    [ack.batch_hash, self.target, ack.source, self.load_id, len(ack.hit_ids), ack.tracked,
                     ack.invalid, ack.lost_answers, now, ack.found_stored, ack.reconciled],
                )  # fmt: skip
                # One parameter split by the database: cheaper than 200 rows through Arrow or executemany.
                self._run(
                    f"insert into {self._hits} select unnest({split}(?, chr(10))), ?",
                    ["\n".join(ack.hit_ids), ack.batch_hash],
                )
        if ack is not None and ack.hit_ids:
            self._known = True

    def reject(self, rejections: Sequence[Rejection]) -> None:
        if not rejections:
            return
        now = utc_now()
        if self._postgres:
            with self._lock:
                self._cursor.executemany(
                    f"insert into {self._rejected} values (%s, %s, %s, %s, %s, %s, %s::json, %s)",
                    [(self.load_id, now, r.source, r.origin, r.reason, r.hit_id, r.row, r.request) for r in rejections],
                )
            return
        table = pa.table(
            {
                "load_id": pa.array([self.load_id] * len(rejections), pa.string()),
                "rejected_at": pa.array([now] * len(rejections), pa.timestamp("us", tz="UTC")),
                "source": pa.array([r.source for r in rejections], pa.string()),
                "origin": pa.array([r.origin for r in rejections], pa.string()),
                "reason": pa.array([r.reason for r in rejections], pa.string()),
                "hit_id": pa.array([r.hit_id for r in rejections], pa.string()),
                "row": pa.array([r.row for r in rejections], pa.string()),
                "request": pa.array([r.request for r in rejections], pa.string()),
            }
        )
        with self._lock:
            self._cursor.register("ledger_rejections", table)
            try:
                self._cursor.execute(
                    f"insert into {self._rejected} select load_id, rejected_at, source, origin, "
                    "reason, hit_id, row::json, request from ledger_rejections"
                )
            finally:
                self._cursor.unregister("ledger_rejections")

    def close(self) -> None:
        self._cursor.close()
