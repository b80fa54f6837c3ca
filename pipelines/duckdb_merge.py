"""Merges into DuckDB straight from the load package's Parquet files: each row is written once, not twice.

dlt merges a table by first copying each file into a staging table, then running its merge SQL from that staging
table into the destination table. On DuckDB each of those two inserts costs as much as the other: 100k
Opentracker sessions (71 columns) spent 0.9 s on the staging copy and 1.0 s on the merge, and the commit of every
write compresses each column of the row group. Here a Parquet file bound for a merge is not copied: its job does
nothing, and the merge that dlt starts when all of the table's files are in reads the files themselves, in
one transaction (delete the rows whose primary key the files hold, insert the files' rows, one per key).

Exactly once, as before: the merge's SQL is a job file of the load package, as dlt's own merge is; a crash before
its commit changes nothing and the resumed load runs it again; a crash after its commit runs it again with the same
result (the delete takes away what the insert put in). The files it reads stay in the package until it is loaded.

Only where it is the same merge as dlt's: a table with a primary key, no merge key, no nested tables, no hard
delete column, no merge filter or scope, the delete-insert strategy, on dlt's own DuckDB client
(MotherDuck and others keep dlt's path). A package whose table also got rows in another format (dict rows beside
Arrow pages) copies its Parquet files into the staging table first and runs dlt's own merge.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any

from .dlt_settings import wrap_in_place

enabled = True  # tests turn it off to compare with dlt's own merge


def eligible(client: Any, table: Any) -> bool:
    """Whether `table`'s merge is the plain delete-insert by primary key that `direct_merge_sql` repeats."""
    from dlt.common.schema.utils import get_nested_tables
    from dlt.destinations.impl.duckdb.duck import DuckDbClient

    if not enabled or type(client) is not DuckDbClient or table.get("write_disposition") != "merge":
        return False
    if table.get("x-merge-strategy", "delete-insert") != "delete-insert":
        return False
    if table.get("x-merge-source-filter") or table.get("x-merge-destination-scope"):
        return False
    columns = table.get("columns", {}).values()
    if not any(column.get("primary_key") for column in columns):
        return False
    if any(column.get(hint) for column in columns for hint in ("merge_key", "hard_delete")):
        return False
    return len(get_nested_tables(client.schema.tables, table["name"])) == 1


def deferred(client: Any, table: Any, file_path: str) -> bool:
    """A Parquet file the merge reads itself: its own job has nothing to do."""
    from dlt.common.storages.load_storage import ParsedLoadJobFileName

    if ";" in file_path:  # dlt cuts a SQL job's text at every `;`, quoted or not
        return False
    return ParsedLoadJobFileName.parse(file_path).file_format == "parquet" and eligible(client, table)


def defer_parquet_to_merge(create_load_job: Any) -> Any:
    @functools.wraps(create_load_job)
    def create(self: Any, table: Any, file_path: str, load_id: str, restore: bool = False) -> Any:
        if not deferred(self, table, file_path):
            return create_load_job(self, table, file_path, load_id, restore)
        return _read_by_the_merge()(file_path)

    create.__wrapped_original__ = create_load_job  # type: ignore[attr-defined]
    return create


@functools.cache
def _read_by_the_merge() -> type:
    """The job of a file the merge reads. It runs (and does nothing) in dlt's pool rather than being handed back
    finished: dlt's load loop wakes when a pool job ends, and else sleeps a whole second before it looks at the
    jobs again (measured: a 534-row run's load 0.09 -> 1.08 s with a finished job)."""
    from dlt.common.destination.client import HasFollowupJobs, RunnableLoadJob

    class ReadByTheMerge(RunnableLoadJob, HasFollowupJobs):
        def run(self) -> None:
            pass

    return ReadByTheMerge


def remember_chain_jobs(create_followups: Any) -> Any:
    """dlt hands the finished jobs of a table to this method only; its merge step (below) needs their files."""

    @functools.wraps(create_followups)
    def create(self: Any, table_chain: Sequence[Any], completed_table_chain_jobs: Any = None) -> Any:
        self._clickhaul_chain_jobs = completed_table_chain_jobs or ()
        try:
            return create_followups(self, table_chain, completed_table_chain_jobs)
        finally:
            del self._clickhaul_chain_jobs

    create.__wrapped_original__ = create_followups  # type: ignore[attr-defined]
    return create


def merge_from_files(create_merge_followups: Any) -> Any:
    @functools.wraps(create_merge_followups)
    def create(self: Any, table_chain: Sequence[Any]) -> Any:
        root = table_chain[0]
        jobs = getattr(self, "_clickhaul_chain_jobs", ())
        files = [
            job.file_path
            for job in jobs
            if deferred(self, self.prepare_load_table(job.job_file_info.table_name), job.file_path)
        ]
        if not files:
            return create_merge_followups(self, table_chain)
        if len(files) == len(jobs) and len(table_chain) == 1:
            # dlt keeps the WAL until the connection closes (checkpoint_threshold 1gb); a merge this size then
            # writes every row to the WAL uncompressed and again at the close. Checkpointed at its commit, DuckDB
            # writes the rows once, compressed (100k sessions: 0.86 s + 0.45 s at the close -> 1.09 s).
            kept = getattr(self.sql_client, "_global_config", {}).get("checkpoint_threshold")
            rows = rows_in(files)
            one_thread = rows is not None and ONE_THREAD_FROM_ROWS <= rows <= ROW_GROUP_ROWS
            statements = direct_merge_sql(self.sql_client, root, files, one_thread)
            after = [restore_threads(self)] if one_thread else []
            return [sql_job(root["name"], statements, checkpoint_threshold_after=kept, after_commit=after)]
        # rows of other formats are in the staging table: join them there and merge as dlt does
        from dlt.destinations.sql_jobs import SqlMergeFollowupJob

        with self.sql_client.with_staging_dataset():
            staging = self.sql_client.make_qualified_table_name(root["name"])
        statements = [f"INSERT INTO {staging} BY NAME SELECT * FROM {parquet_files(files)};"]
        statements += SqlMergeFollowupJob.generate_sql(table_chain, self.sql_client)
        return [sql_job(root["name"], statements)]

    create.__wrapped_original__ = create_merge_followups  # type: ignore[attr-defined]
    return create


def parquet_files(files: Sequence[str]) -> str:
    listed = ", ".join("'" + path.replace("'", "''") + "'" for path in files)
    return f"read_parquet([{listed}], union_by_name=true)"


ROW_GROUP_ROWS = 122_880  # DuckDB's rows per row group
ONE_THREAD_FROM_ROWS = 1_000  # below, changing the thread count twice costs what one thread saves (~1 ms)


def rows_in(files: Sequence[str]) -> int | None:
    """The rows of the Parquet files, from their footers; None if one cannot be read. The file whose job
    completed the table's chain is still in `started_jobs`: dlt moves it to `completed_jobs` (its path here)
    once the merge's job exists."""
    from pathlib import Path

    import pyarrow as pa
    import pyarrow.parquet as pq

    rows = 0
    for path in map(Path, files):
        started = path.parent.parent / "started_jobs" / path.name
        try:
            rows += pq.read_metadata(path if path.exists() else started).num_rows
        except (OSError, pa.ArrowException):
            return None
    return rows


def restore_threads(client: Any) -> str:
    """The statement that gives the database its thread count back: the one configured for the destination
    (`global_config`), else DuckDB's default (RESET: the cores, not what a connection handed to dlt was opened
    with). Not the current value read before: two merges at once would each restore the other's one thread."""
    configured = (getattr(client.config.credentials, "global_config", None) or {}).get("threads")
    if configured is None:
        return "RESET threads;"
    return "SET threads = '{}';".format(str(configured).replace("'", "''"))


def direct_merge_sql(sql_client: Any, table: Any, files: Sequence[str], one_thread: bool = False) -> list[str]:
    """dlt's delete-insert merge by primary key, reading the files where dlt reads its staging table. Of a key's
    rows the one first by the dedup-sort column is kept, as dlt keeps it; without one, any.

    `one_thread`: files whose rows fit in one row group are inserted on one thread (the delete before, which scans
    the table, keeps every thread). Those rows end in one row group, which the commit compresses on one thread
    anyway, and reading and de-duplicating them in parallel cost more than it gave. Opentracker sessions (71
    columns) on 2 cores: 1k rows 26.5 -> 23.5 ms, 5k 70 -> 61 ms, 50k 555 -> 511 ms, 103k 1.03 -> 0.93 s; 206k
    1.59 vs 1.54 s; 1M 5.2 vs 7.8 s (rows beyond a row group are written to disk by the threads as they come).
    300 rows of 21 columns: 10 -> 11 ms, the two changes of the thread count cost more than they save."""
    from dlt.common.schema.utils import get_dedup_sort_tuple

    target = sql_client.make_qualified_table_name(table["name"])
    keys = [
        sql_client.escape_column_name(name) for name, column in table["columns"].items() if column.get("primary_key")
    ]
    source = parquet_files(files)
    matches = " AND ".join(f"s.{key} = d.{key}" for key in keys)
    dedup_sort = get_dedup_sort_tuple(table)
    order = f" ORDER BY {sql_client.escape_column_name(dedup_sort[0])} {dedup_sort[1].upper()}" if dedup_sort else ""
    one_per_key = f"row_number() OVER (PARTITION BY {', '.join(keys)}{order}) = 1"
    if table.get("x-stage-data-deduplicated"):
        one_per_key = "true"
    return [
        f"DELETE FROM {target} AS d WHERE EXISTS (SELECT 1 FROM {source} AS s WHERE {matches});",
        *(["SET threads = 1;"] if one_thread else []),  # a setting, not part of the transaction
        f"INSERT INTO {target} BY NAME SELECT * FROM {source} QUALIFY {one_per_key};",
    ]


def sql_job(
    table_name: str,
    statements: Sequence[str],
    checkpoint_threshold_after: str | None = None,
    after_commit: Sequence[str] = (),
) -> Any:
    """A job file of SQL in the load package, as dlt writes its own merge, but in one transaction: dlt runs a
    merge's statements on DuckDB one by one in autocommit (its DuckDB capabilities declare no transactions), so a
    reader could see the rows deleted and not yet inserted. An error rolls the transaction back (dlt's client
    does on any DuckDB error). Where dlt would see a DDL word in the text (even inside a file's path) it opens a
    transaction of its own, and a second BEGIN would fail. `after_commit`: settings given back once it is done."""
    import re

    from dlt.common.storages.load_storage import ParsedLoadJobFileName
    from dlt.destinations.job_client_impl import DDL_COMMANDS
    from dlt.destinations.sql_jobs import SqlFollowupJob

    name = ParsedLoadJobFileName(table_name, ParsedLoadJobFileName.new_file_id(), 0, "sql").file_name()
    job = SqlFollowupJob(name)
    text = "\n".join(" ".join(statement.splitlines()) for statement in statements)
    if not any(re.search(command, text, re.IGNORECASE) for command in DDL_COMMANDS):
        if checkpoint_threshold_after:  # DuckDB's default while this transaction commits, dlt's after it
            restore = checkpoint_threshold_after.replace("'", "''")
            text = f"{text}\nRESET checkpoint_threshold;\nCOMMIT;\nSET checkpoint_threshold = '{restore}';"
        else:
            text = f"{text}\nCOMMIT;"
        text = f"BEGIN TRANSACTION;\n{text}"
    text = "\n".join([text, *after_commit])
    job._save_text_file(text)
    return job


@functools.cache
def merge_duckdb_from_files() -> None:
    """Once per process, before dlt's first load."""
    from dlt.destinations.impl.duckdb.duck import DuckDbClient

    wrap_in_place(DuckDbClient, "create_load_job", defer_parquet_to_merge)
    wrap_in_place(DuckDbClient, "create_table_chain_completed_followup_jobs", remember_chain_jobs)
    wrap_in_place(DuckDbClient, "_create_merge_followup_jobs", merge_from_files)
