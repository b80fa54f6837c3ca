"""The write-back ledger behaves the same in a DuckDB file and in a PostgreSQL warehouse: a batch in flight survives
the process, what was acknowledged is never sent again, rejections keep their rows, and two processes setting the
ledger up at once in a fresh PostgreSQL database both succeed."""

from __future__ import annotations

import json
import multiprocessing
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from destinations.common.ledger import Acknowledgement, Ledger, LedgerTables, PostgresLedgerPlace, Rejection
from tests.support import postgres_url


def postgres_place() -> PostgresLedgerPlace:
    import psycopg2

    url = postgres_url()
    return PostgresLedgerPlace(lambda: psycopg2.connect(url), "postgres")


@pytest.fixture(params=["duckdb", "postgres"])
def place(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[Any, LedgerTables]]:
    tables = LedgerTables(f"t_ledger_{uuid.uuid4().hex[:8]}")
    if request.param == "duckdb":
        yield tmp_path / "ledger.duckdb", tables
        return
    where = postgres_place()
    try:
        yield where, tables
    finally:
        connection = where.connect()
        with connection.cursor() as cursor:
            cursor.execute(f'drop schema if exists "{tables.schema}" cascade')
        connection.commit()
        connection.close()


def test_flights_acknowledgements_and_rejections_outlive_the_process(place: tuple[Any, LedgerTables]) -> None:
    where, tables = place
    hits = [f"hit-{i}" for i in range(250)]
    with Ledger.open(where, "https://t.example", "1", tables) as ledger:
        ledger.prepare("d.t")
        assert not ledger.knows("d.t") and ledger.acknowledged(hits) == set()
        first = ledger.launch("d.t", hits[:200], [f"request {i}" for i in range(200)])
        second = ledger.launch("d.t", hits[200:], [f"request {i}" for i in range(200, 250)])
        ledger.settle(first, Acknowledgement("b1", hits[:200], "d.t", tracked=200, invalid=0, lost_answers=0))
        ledger.reject([Rejection("d.t", "client", "url is missing", "hit-x", json.dumps({"id": 7}), None)])
    with Ledger.open(where, "https://t.example", "2", tables) as ledger:  # a later run, as after a crash
        ledger.prepare("d.t")
        assert ledger.knows("d.t")
        assert ledger.acknowledged(hits) == set(hits[:200])
        (left,) = ledger.in_flight("d.t")
        assert (left.flight_id, list(left.hit_ids), left.requests[-1]) == (second.flight_id, hits[200:], "request 249")
        ledger.settle(left, Acknowledgement("b2", hits[200:220], "d.t", 20, 0, 1, found_stored=20, reconciled=True))
        assert ledger.in_flight("d.t") == [] and len(ledger.acknowledged(hits)) == 220
    with Ledger.open(where, "https://other.example", "3", tables) as other:
        other.prepare("d.t")
        assert not other.knows("d.t") and other.acknowledged(hits) == set()


def _set_up(schema: str) -> None:
    with Ledger.open(postgres_place(), "https://t.example", "1", LedgerTables(schema)) as ledger:
        ledger.prepare("d.t")


def test_pushes_setting_up_one_postgres_ledger_at_once_both_succeed() -> None:
    schema = f"t_ledger_{uuid.uuid4().hex[:8]}"
    context = multiprocessing.get_context("spawn")
    try:
        processes = [context.Process(target=_set_up, args=(schema,)) for _ in range(4)]
        for process in processes:
            process.start()
        for process in processes:
            process.join(timeout=60)
        assert [process.exitcode for process in processes] == [0, 0, 0, 0]
    finally:
        connection = postgres_place().connect()
        with connection.cursor() as cursor:
            cursor.execute(f'drop schema if exists "{schema}" cascade')
        connection.commit()
        connection.close()
