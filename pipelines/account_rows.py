"""Every account's rows in the same tables: an `account` column, part of each table's key.

Applied to any vendor's source from outside (`stamp_source`), so no vendor has to know about accounts:
- every page a resource yields gets the column (Arrow tables and dict rows alike), and every key hint, static or
  carried by a page (`dlt.mark.with_hints`, table variants), gets `account` added;
- for a named account, a table the vendor replaces whole becomes a merge on `account` (dlt's delete-insert deletes
  the rows of the account in the load, then inserts): one account's run replaces its own rows, never another
  account's. (A run that yields no rows for such a table leaves the account's earlier rows; the implicit `default`
  account, alone in its tables, still replaces them whole, empty or not.)
Tables loaded before accounts existed get the column, filled with the implicit account's name, before the first
load that carries it (`adopt_existing_tables`), so their keys still match.
"""

from __future__ import annotations

import logging
from typing import Any

import dlt
import pyarrow as pa
from dlt.common.exceptions import DltException
from dlt.extract.hints import HintsMeta
from dlt.extract.items import DataItemWithMeta
from dlt.extract.items_transform import ItemTransform

from sources.common.accounts import ACCOUNT_COLUMN, DEFAULT_ACCOUNT

log = logging.getLogger("clickhaul.accounts")

COLUMN_HINT: dict[str, Any] = {"name": ACCOUNT_COLUMN, "data_type": "text", "nullable": False}


def _with_account(keys: Any) -> Any:
    if not keys or callable(keys):
        return keys
    names = [keys] if isinstance(keys, str) else list(keys)
    return names if ACCOUNT_COLUMN in names else [*names, ACCOUNT_COLUMN]


def _patched(hints: dict[str, Any], named: bool) -> dict[str, Any]:
    """A hints template with `account` in its columns and keys; for a named account, `replace` becomes a merge
    on the account (the implicit `default` account, alone in its tables, keeps replacing them whole)."""
    hints = dict(hints)
    if hints.get("primary_key"):
        hints["primary_key"] = _with_account(hints["primary_key"])
    if hints.get("merge_key"):
        hints["merge_key"] = _with_account(hints["merge_key"])
    if named and hints.get("write_disposition") == "replace":
        hints["write_disposition"] = "merge"
        hints["merge_key"] = _with_account(hints.get("merge_key")) or [ACCOUNT_COLUMN]
    columns = hints.get("original_columns")
    if isinstance(columns, dict):
        hints["original_columns"] = {**columns, ACCOUNT_COLUMN: dict(COLUMN_HINT)}
    elif columns is None:
        hints["original_columns"] = {ACCOUNT_COLUMN: dict(COLUMN_HINT)}
    return hints


class AccountStamp(ItemTransform[Any, Any]):
    """The last step of every resource: the account's name on each row, `account` in the keys a page carries."""

    def __init__(self, account: str) -> None:
        super().__init__(lambda item: item)
        self.account = account

    def __call__(self, item: Any, meta: Any = None) -> Any:
        stamped = self.stamp(item)
        if isinstance(meta, HintsMeta) and meta.hints:
            hints = _patched(dict(meta.hints), self.account != DEFAULT_ACCOUNT)
            return DataItemWithMeta(HintsMeta(hints, meta.create_table_variant), stamped)  # type: ignore[arg-type]
        return stamped

    def stamp(self, item: Any) -> Any:
        if isinstance(item, pa.Table):
            if ACCOUNT_COLUMN in item.column_names:
                item = item.drop_columns([ACCOUNT_COLUMN])
            field = pa.field(ACCOUNT_COLUMN, pa.string(), nullable=False)  # as its column hint says
            return item.append_column(field, pa.array([self.account] * item.num_rows, pa.string()))
        if isinstance(item, list):
            return [self.stamp(row) for row in item]
        if isinstance(item, dict):
            item[ACCOUNT_COLUMN] = self.account
        return item


def stamp_source(source: Any, account: str) -> Any:
    """`account` on every row and in every key of `source`'s resources (see the module's docstring)."""
    for resource in source.resources.values():
        hints = resource._hints or {}
        patched = _patched(
            {
                "write_disposition": resource.write_disposition,
                "primary_key": hints.get("primary_key"),
                "merge_key": hints.get("merge_key"),
                "original_columns": None if callable(hints.get("columns")) else {},
            },
            account != DEFAULT_ACCOUNT,
        )
        resource.apply_hints(
            write_disposition=patched["write_disposition"],
            primary_key=patched.get("primary_key"),
            merge_key=patched.get("merge_key"),
            columns=patched["original_columns"] if patched["original_columns"] else None,
        )
        resource.add_step(AccountStamp(account))
    return source


def adopt_existing_tables(pipeline: dlt.Pipeline) -> list[str]:
    """Root tables of the dataset loaded before accounts existed: add `account`, filled with the implicit account's
    name (`default`), so the keys of their rows match what the next load merges. The same for their merge staging
    tables (which dlt would otherwise fail to give a NOT NULL column while they hold rows). Returns the tables
    changed in the dataset itself."""
    from .journal import stores_sql

    if not stores_sql(pipeline):
        return []
    text = "STRING" if pipeline.destination and pipeline.destination.destination_name == "bigquery" else "varchar"
    try:
        with pipeline.sql_client() as client:
            if not client.has_dataset():
                return []
            adopted = _adopt(client, client.dataset_name, text)
            with client.with_staging_dataset():
                if client.has_dataset():
                    _adopt(client, client.dataset_name, text)
            return adopted
    except DltException as error:  # destinations without SQL (a bucket): nothing to adopt
        log.debug("cannot adopt tables of %s: %s", pipeline.dataset_name, error)
        return []


def _adopt(client: Any, dataset: str, text: str) -> list[str]:
    quoted = dataset.replace("'", "''")
    rows = client.execute_sql(
        "select table_name, column_name from information_schema.columns "
        f"where table_schema = '{quoted}' and column_name in ('_dlt_load_id', '_dlt_parent_id', '{ACCOUNT_COLUMN}')"
    )
    found: dict[str, set[str]] = {}
    for table, column in rows or []:
        found.setdefault(str(table), set()).add(str(column))
    todo = sorted(t for t, columns in found.items() if columns == {"_dlt_load_id"} and not t.startswith("_dlt"))
    column = client.escape_column_name(ACCOUNT_COLUMN)
    for table in todo:
        qualified = client.make_qualified_table_name(table)
        client.execute_sql(f"alter table {qualified} add column {column} {text}")
        client.execute_sql(f"update {qualified} set {column} = '{DEFAULT_ACCOUNT}' where {column} is null")
        log.warning("table %s.%s had no %s column: added, its rows are account %s", dataset, table, column,
                    DEFAULT_ACCOUNT)  # fmt: skip
    return todo
