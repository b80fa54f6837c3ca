"""What the Airflow tasks of a backfill DAG run (see `dag_factory.clickhaul_backfill_dag`); no Airflow import.

Every task works in a working directory of its own that it deletes afterwards, as an ephemeral worker would: the
cursors come from dlt's state in the destination and the backfill's progress from the journal there
(`pipelines.journal`), so any worker continues what another started, and a task killed mid-window and retried
loads its window again (a merge on the window's keys: the tables stay exact).
"""

from __future__ import annotations

import hashlib
import logging
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sources.common.config import environment
from sources.common.windows import parse_date, split_windows

log = logging.getLogger("clickhaul.airflow")

SERIAL_DESTINATIONS = ("duckdb", "motherduck")  # one writer: their windows run one after another


def backfill_key(start: str, end: str, chunk: str, resources: list[str] | None) -> str:
    """The journal's key of a backfill: the same as `clickhaul backfill` uses for the same range and resources."""
    return f"{start}..{end}/{chunk}/{','.join(resources or ['*'])}"


@contextmanager
def account_pipeline(source: str, account: str, destination: str, dataset: str | None) -> Iterator[Any]:
    """The account's pipeline in a throwaway working directory, inside the account's scope."""
    from pipelines.options import LoadOptions
    from pipelines.registry import vendor
    from pipelines.runner import account_scope, open_pipeline

    with tempfile.TemporaryDirectory(prefix="clickhaul-task-") as workdir, account_scope(account):
        options = LoadOptions(destination=destination, dataset=dataset, pipelines_dir=workdir, progress="log")
        yield vendor(source), options, open_pipeline(vendor(source), options)


def plan_windows(
    source: str,
    account: str,
    start: str,
    end: str,
    chunk: str,
    destination: str,
    dataset: str | None,
    resources: list[str] | None,
) -> list[dict[str, Any]]:
    """The windows of `start`..`end` the destination's journal does not list as done: one mapped task each."""
    from pipelines.journal import Journal

    first, last = parse_date(start, "start"), parse_date(end, "end")
    windows = split_windows(first, last, chunk)  # type: ignore[arg-type]
    names = [str(window) for window in windows]
    key = backfill_key(str(first), str(last), chunk, resources)
    with account_pipeline(source, account, destination, dataset) as (_, _, pipeline):
        entry = Journal.of(pipeline).start_backfill(key, names, {"chunk": chunk, "resources": resources})
        done = set(entry["done"])
    todo = [
        {
            "source": source,
            "account": account,
            "start": str(window.start),
            "end": str(window.end),
            "window": name,
            "windows": names,
            "key": key,
            "destination": destination,
            "dataset": dataset,
            "resources": resources,
        }
        for window, name in zip(windows, names, strict=True)
        if name not in done
    ]
    log.warning("%s account %s: %d of %d windows to load", source, account, len(todo), len(names))
    return todo


def staging_layout(account: str, window: str) -> str:
    """Windows of one account load at once on a warehouse: each merges through staging tables of its own."""
    return f"%s_staging_{account}_w{hashlib.sha256(window.encode()).hexdigest()[:10]}"


def load_window(
    source: str,
    account: str,
    start: str,
    end: str,
    window: str,
    windows: list[str],
    key: str,
    destination: str,
    dataset: str | None,
    resources: list[str] | None,
) -> dict[str, Any]:
    """One window of one account, then its row in the journal. Returns the run's summary figures."""
    from pipelines.journal import Journal
    from pipelines.runner import run_vendor

    parallel = destination not in SERIAL_DESTINATIONS
    layout = {"DESTINATION__STAGING_DATASET_NAME_LAYOUT": staging_layout(account, window)} if parallel else {}
    with environment(layout), account_pipeline(source, account, destination, dataset) as (spec, options, pipeline):
        summary = run_vendor(spec, options, start=start, end=end, account=account, resources=resources)
        journal = Journal.of(pipeline)
        journal.start_backfill(key, windows, {"resources": resources})
        journal.window_done(key, window)
    log.warning("%s", summary.render())
    return {"window": window, "rows": sum(summary.rows.values()), "requests": summary.requests}


def drop_window_staging(source: str, account: str, destination: str, dataset: str | None) -> list[str]:
    """The windows' staging datasets of one account, once its windows are done (they hold no rows by then)."""
    if destination in SERIAL_DESTINATIONS:
        return []
    dropped = []
    with account_pipeline(source, account, destination, dataset) as (_, _, pipeline):
        prefix = f"{pipeline.dataset_name}_staging_{account}_w".replace("'", "''")
        with pipeline.sql_client() as client:
            rows = client.execute_sql(
                f"select schema_name from information_schema.schemata where schema_name like '{prefix}%'"
            )
            for (schema,) in rows or []:
                client.execute_sql(f"drop schema if exists {client.escape_column_name(str(schema))} cascade")
                dropped.append(str(schema))
    return dropped


# What one vendor login is, for the pools: the fields that name who the vendor counts requests for.
LOGIN_FIELDS = {"webtrekk": ("base_url", "login"), "pirsch": ("base_url", "client_id")}
# Tasks of one login at once: Webtrekk's 5 / 10 s and 120 / 600 s are per login and only one process can pace
# against them exactly wherever the workers run; others are bounded by the DAG's parallelism.
LOGIN_SLOTS = {"webtrekk": 1}


def login_of(source: str, account: str) -> str:
    """Who the vendor counts `account`'s requests for (its login), from the account's resolved settings."""
    fields = LOGIN_FIELDS.get(source)
    if not fields:
        return f"account:{account}"
    import importlib

    from sources.common.accounts import use_account
    from sources.common.config import VendorConfig

    module = importlib.import_module(f"sources.{source}.config")
    (spec,) = {
        value
        for value in vars(module).values()
        if isinstance(value, type)
        and issubclass(value, VendorConfig)
        and (source, "sources") == (value.VENDOR, value.SECTION)
        and all(name in value.get_resolvable_fields() for name in fields)
    }
    with use_account(account):
        config = spec.from_config()
    return "|".join(str(getattr(config, name)) for name in fields)


def pool_of(source: str, account: str, parallel: int) -> tuple[str, int]:
    """The account's Airflow pool (one per login: accounts sharing a login share it) and its slots."""
    digest = hashlib.sha256(f"{source}|{login_of(source, account)}".encode()).hexdigest()[:12]
    return f"clickhaul_{source}_{digest}", LOGIN_SLOTS.get(source, parallel)
