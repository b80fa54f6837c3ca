"""A merge read straight from the package's Parquet files ends with the table dlt's own merge ends with, and a
process killed inside it, before or after its commit, loads every row exactly once when it starts again."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import dlt
import duckdb
import pyarrow as pa
import pytest

from pipelines import duckdb_merge
from tests.support import ROOT

KEY = ("site", "session_id")


def page(keys: range, seen: int, extra: bool = False, repeat: int = 0) -> pa.Table:
    """Sessions of one site pair of sites; `repeat` keys appear a second time with an older `seen`."""
    ids = [f"s{k}" for k in keys] + [f"s{k}" for k in keys[:repeat]]
    columns: dict[str, Any] = {
        "site": ["a" if k % 2 else "b" for k in keys] + ["a" if k % 2 else "b" for k in keys[:repeat]],
        "session_id": ids,
        "seen": [seen] * len(keys) + [seen - 1] * repeat,
        "pages": [f"{k}-{seen}" for k in keys] + [f"stale-{k}" for k in keys[:repeat]],
    }
    if extra:
        columns["browser"] = ["firefox"] * len(ids)
    return pa.table(columns)


def sessions(pages: list[pa.Table], *, dicts: list[dict[str, Any]] | None = None, **hints: Any) -> Any:
    @dlt.resource(name="sessions", write_disposition="merge", primary_key=KEY, **hints)
    def resource() -> Iterator[Any]:
        yield from pages
        if dicts:
            yield dicts

    return resource


def load(tmp_path: Path, name: str, runs: list[Any]) -> list[tuple[Any, ...]]:
    """Each resource loaded by its own run of one pipeline; the table at the end, without dlt's columns."""
    from pipelines.runner import prepare_loads

    prepare_loads()
    database = tmp_path / f"{name}.duckdb"
    pipeline = dlt.pipeline(
        pipeline_name=name,
        destination=dlt.destinations.duckdb(str(database)),
        pipelines_dir=str(tmp_path / "dlt"),
        dataset_name="data",
    )
    for resource in runs:
        pipeline.run(resource)
    with duckdb.connect(str(database), read_only=True) as connection:
        columns = [
            row[0]
            for row in connection.execute(
                "select column_name from information_schema.columns where table_schema = 'data' "
                "and table_name = 'sessions' and column_name not like '\\_dlt%' escape '\\' order by column_name"
            ).fetchall()
        ]
        listed = ", ".join(columns)
        return connection.execute(f"select {listed} from data.sessions order by {listed}").fetchall()


def merge_sql(tmp_path: Path, name: str) -> str:
    """The merge job dlt ran last, as written into the load package."""
    jobs = sorted((tmp_path / "dlt" / name / "load" / "loaded").glob("*/completed_jobs/sessions.*.sql"))
    return jobs[-1].read_text()


@pytest.fixture
def both(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    """Loads the same runs with the direct merge and with dlt's own; answers both tables and the direct SQL."""

    def run(runs: list[Any]) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]], str]:
        direct = load(tmp_path, "direct", runs)
        sql = merge_sql(tmp_path, "direct")
        monkeypatch.setattr(duckdb_merge, "enabled", False)
        staged = load(tmp_path, "staged", runs)
        monkeypatch.setattr(duckdb_merge, "enabled", True)
        return direct, staged, sql

    return run


def test_the_merge_from_files_ends_with_the_table_of_dlts_merge(both: Any) -> None:
    dedup = {"columns": {"seen": {"dedup_sort": "desc"}}}
    runs = [
        sessions([page(range(0, 6000), seen=10, repeat=700), page(range(5000, 9000), seen=11)], **dedup),
        # a later run: keys seen before change, new keys arrive, and a column is added
        sessions([page(range(3000, 12000), seen=20, extra=True, repeat=50)], **dedup),
    ]
    direct, staged, sql = both(runs)
    assert len(direct) == 12000  # every key once
    assert direct == staged
    assert "read_parquet" in sql and "_staging" not in sql
    # the newest copy of a key served twice in one run wins, as dedup_sort asks
    # (columns by name: browser, pages, seen, session_id, site)
    assert (None, "0-10", 10, "s0", "b") in direct and ("firefox", "3001-20", 20, "s3001", "a") in direct


def test_rows_of_another_format_beside_the_files_go_through_dlts_merge(
    both: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NORMALIZE__PARQUET_NORMALIZER__ADD_DLT_ID", "true")  # dict rows carry one: so must pages

    def dicts(seen: int) -> list[dict[str, Any]]:
        return [{"site": "a", "session_id": f"s{k}", "seen": seen, "pages": f"dict-{k}"} for k in range(1, 400, 2)]

    dedup = {"columns": {"seen": {"dedup_sort": "desc"}}}  # which copy of a key wins is then not arbitrary
    runs = [
        sessions([page(range(0, 1000), seen=10)], dicts=dicts(5), **dedup),
        sessions([page(range(200, 600), seen=20)], dicts=dicts(30), **dedup),
    ]
    direct, staged, sql = both(runs)
    assert direct == staged
    assert len(direct) == 1000
    assert "read_parquet" in sql and "_staging" in sql  # the files joined the staging table first
    assert (
        ("0-10", 10, "s0", "b") in direct
        and ("dict-201", 30, "s201", "a") in direct
        and ("301-20", 20, "s301", "a") not in direct
    )


@pytest.mark.parametrize("hint", ["merge_key", "hard_delete"])
def test_merges_this_path_does_not_repeat_are_dlts_own(both: Any, hint: str) -> None:
    columns: dict[str, Any] = {"seen": {"hard_delete": True, "data_type": "bool"}} if hint == "hard_delete" else {}
    extra: dict[str, Any] = {"merge_key": "site"} if hint == "merge_key" else {}

    def pages(seen: int) -> list[pa.Table]:
        table = page(range(0, 500), seen=seen)
        if hint == "hard_delete":
            table = table.set_column(2, "seen", pa.array([k % 7 == 0 and seen > 10 for k in range(500)]))
        return [table]

    direct, staged, sql = both(
        [sessions(pages(10), columns=columns, **extra), sessions(pages(20), columns=columns, **extra)]
    )
    assert direct == staged
    assert "read_parquet" not in sql


CHILD = textwrap.dedent(
    """
    import os, sys
    import dlt, pyarrow as pa
    from dlt.destinations.impl.duckdb.sql_client import DuckDbSqlClient
    from dlt.destinations.job_client_impl import SqlLoadJob
    from pipelines.runner import prepare_loads

    home, kill = sys.argv[1], sys.argv[2]
    prepare_loads()
    run, execute = SqlLoadJob.run, DuckDbSqlClient.execute_sql

    def run_then_die(self):
        run(self)
        os._exit(9)

    def die_before_commit(self, sql, *args, **kwargs):
        if "\\nCOMMIT;" in sql:  # the merge's statements run, its transaction is never committed
            execute(self, sql.split("\\nCOMMIT;")[0], *args, **kwargs)
            os._exit(9)
        return execute(self, sql, *args, **kwargs)

    if kill == "after-commit":
        SqlLoadJob.run = run_then_die
    if kill == "before-commit":
        DuckDbSqlClient.execute_sql = die_before_commit

    @dlt.resource(name="sessions", write_disposition="merge", primary_key=("site", "session_id"))
    def sessions():
        keys = range(int(sys.argv[3]), int(sys.argv[4]))
        sites, ids = ["a"] * len(keys), [f"s{k}" for k in keys]
        yield pa.table({"site": sites, "session_id": ids, "run": [sys.argv[5]] * len(keys)})

    pipeline = dlt.pipeline(pipeline_name="killed", destination=dlt.destinations.duckdb(home + "/killed.duckdb"),
                            pipelines_dir=home + "/dlt", dataset_name="data")
    if pipeline.has_pending_data:  # dlt's run would load them and leave the new rows out
        pipeline.load()
    pipeline.run(sessions())
    """
)


@pytest.mark.parametrize("kill", ["before-commit", "after-commit"])
def test_a_process_killed_inside_the_merge_loads_every_row_once_when_run_again(tmp_path: Path, kill: str) -> None:
    def child(kill: str, first: int, last: int, tag: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-c", CHILD, str(tmp_path), kill, str(first), str(last), tag],
            cwd=str(ROOT), env={**os.environ, "PYTHONPATH": str(ROOT)}, capture_output=True, text=True, timeout=300,
        )  # fmt: skip

    assert child("none", 0, 1000, "first").returncode == 0
    killed = child(kill, 500, 1500, "second")
    assert killed.returncode == 9, killed.stderr[-2000:]
    # the next run loads the pending package first (the killed merge), then its own rows
    again = child("none", 1400, 1600, "third")
    assert again.returncode == 0, again.stderr[-2000:]
    with duckdb.connect(str(tmp_path / "killed.duckdb"), read_only=True) as connection:
        rows = dict(connection.execute("select session_id, run from data.sessions").fetchall())
        total = connection.execute("select count(*) from data.sessions").fetchone()
    assert total == (1600,)  # each key once
    assert rows["s0"] == "first" and rows["s700"] == "second" and rows["s1450"] == "third"


@pytest.mark.parametrize("folder", ["Drop Zone", "a;b"])
def test_paths_dlt_reads_as_sql_still_merge_right(tmp_path: Path, folder: str) -> None:
    """A DDL word in the package's path makes dlt open the transaction itself; a `;` would cut the SQL, so such a
    path keeps dlt's own merge."""
    home = tmp_path / folder
    home.mkdir()
    rows = load(home, "odd", [sessions([page(range(0, 300), seen=1)]), sessions([page(range(100, 400), seen=2)])])
    assert len(rows) == 400 and ("101-2", 2, "s101", "a") in rows
    sql = merge_sql(home, "odd")
    assert ("read_parquet" in sql) == (";" not in folder)
    assert "BEGIN TRANSACTION" not in sql


def test_a_connection_handed_to_dlt_merges_from_files_and_keeps_dlts_checkpoint_setting(tmp_path: Path) -> None:
    """DuckDB's default threshold holds while the merge commits (its rows are written once, compressed); the
    database then has dlt's setting again."""
    from pipelines.runner import prepare_loads

    prepare_loads()
    held = duckdb.connect(
        str(tmp_path / "held.duckdb")
    )  # handed to dlt: the database and its settings outlive the load
    try:
        pipeline = dlt.pipeline(
            pipeline_name="held", destination=dlt.destinations.duckdb(held), pipelines_dir=str(tmp_path / "dlt")
        )
        pipeline.run(sessions([page(range(0, 2000), seen=1)]))
        pipeline.run(sessions([page(range(0, 3000), seen=2)]))
        assert held.execute("select count(*) from held_dataset.sessions").fetchone() == (3000,)
        assert "read_parquet" in (sql := merge_sql(tmp_path, "held")) and "RESET checkpoint_threshold" in sql
        setting = held.execute("select current_setting('checkpoint_threshold')").fetchone()
        assert setting is not None and "953" in str(setting[0])  # dlt's 1gb, in MiB
    finally:
        held.close()


def test_a_merge_of_one_row_group_inserts_on_one_thread_and_gives_the_database_its_threads_back(
    tmp_path: Path,
) -> None:
    """Rows that fit in one of DuckDB's row groups are inserted on one thread (the delete keeps every thread);
    afterwards the database has its thread count again. More rows, or a few, keep every thread."""
    from pipelines.runner import prepare_loads

    prepare_loads()
    held = duckdb.connect(str(tmp_path / "held.duckdb"))
    try:
        threads = "select current_setting('threads')"
        before = held.execute(threads).fetchone()
        pipeline = dlt.pipeline(
            pipeline_name="threads", destination=dlt.destinations.duckdb(held), pipelines_dir=str(tmp_path / "dlt")
        )
        pipeline.run(sessions([page(range(0, 2000), seen=1)]))
        sql = merge_sql(tmp_path, "threads")
        assert sql.index("DELETE FROM") < sql.index("SET threads = 1;") < sql.index("INSERT INTO")
        assert sql.index("COMMIT;") < sql.index("RESET threads;")
        assert held.execute(threads).fetchone() == before
        pipeline.run(sessions([page(range(0, duckdb_merge.ONE_THREAD_FROM_ROWS - 1), seen=2)]))
        assert "SET threads" not in (sql := merge_sql(tmp_path, "threads")) and "RESET threads" not in sql
        pipeline.run(sessions([page(range(0, duckdb_merge.ROW_GROUP_ROWS + 1), seen=3)]))
        assert "SET threads" not in (sql := merge_sql(tmp_path, "threads")) and "RESET threads" not in sql
        assert held.execute("select count(*) from threads_dataset.sessions").fetchone() == (
            duckdb_merge.ROW_GROUP_ROWS + 1,
        )
    finally:
        held.close()


def test_the_thread_count_given_back_is_the_destinations_own() -> None:
    from types import SimpleNamespace

    def client(global_config: dict[str, Any] | None) -> Any:
        return SimpleNamespace(config=SimpleNamespace(credentials=SimpleNamespace(global_config=global_config)))

    assert duckdb_merge.restore_threads(client({"threads": 3, "memory_limit": "1GB"})) == "SET threads = '3';"
    assert duckdb_merge.restore_threads(client({"memory_limit": "1GB"})) == "RESET threads;"
    assert duckdb_merge.restore_threads(client(None)) == "RESET threads;"


def test_a_small_merge_does_not_wait_for_dlts_poll_of_finished_jobs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """dlt's load loop sleeps between looks at its jobs unless a job of its pool wakes it: a file's job handed
    back already finished made every load wait that sleep out. Stretched to 60 s here, it must not be waited."""
    from dlt.load.load import Load

    initialize = Load.__init__

    def patient(self: Any, *args: Any, **kwargs: Any) -> None:
        initialize(self, *args, **kwargs)
        self._run_loop_sleep_duration = 60.0

    monkeypatch.setattr(Load, "__init__", patient)
    began = time.monotonic()
    rows = load(tmp_path, "small", [sessions([page(range(0, 20), seen=1)]), sessions([page(range(10, 30), seen=2)])])
    assert len(rows) == 30
    assert "read_parquet" in merge_sql(tmp_path, "small")
    assert time.monotonic() - began < 45  # two loads: one sleep out would be 60 s
