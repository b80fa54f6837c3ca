"""Where the warehouse is, by one rule for every command, and how a command reads a table from it.

The rule (`resolve_warehouse`): `--database PATH` or `--destination NAME` if given; otherwise dlt's configured
`[destination.duckdb] credentials` (`DESTINATION__DUCKDB__CREDENTIALS`); otherwise `<pipeline>.duckdb` in the
working directory of this command. A relative path is always taken against the working directory of this command:
dlt itself would take it against the directory the pipeline was first run in, which is how runs started elsewhere
ended up writing into another directory's file.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from sources.common.errors import ClickhaulError, ConfigError
from sources.common.redact import redact
from sources.common.tables import TableRows, WarehouseTables, split_table

from . import dlt_files

if TYPE_CHECKING:
    from destinations.common.ledger import LedgerPlace

DUCKDB = "duckdb"
DUCKDB_CREDENTIALS_KEY = "destination.duckdb.credentials"
DUCKDB_CREDENTIALS_ENV = "DESTINATION__DUCKDB__CREDENTIALS"
# dbt and the report read every source at once, so no single pipeline names their file: the demo's file it is.
SHARED_DEFAULT = "clickhaul_demo"


@dataclass(frozen=True)
class Warehouse:
    """A resolved warehouse: a DuckDB file (`path`) or another dlt destination (credentials from dlt config)."""

    destination: str
    path: Path | None
    origin: str  # why this one: the flag, the config key, or the pipeline default

    def describe(self) -> str:
        if self.path is not None:
            return f"DuckDB file {self.path}"
        return f"{self.destination} {configured_location(self.destination)}".rstrip()

    def dlt_destination(self) -> Any:
        """What `dlt.pipeline(destination=...)` gets: an explicit absolute file for DuckDB, else the name."""
        if self.path is not None:
            import dlt

            return dlt.destinations.duckdb(str(self.path))
        return self.destination

    def missing_hint(self) -> str:
        """Why a file is not there and how to point at the right one (run writes it by this same rule)."""
        return (
            f"{self.describe()} ({self.origin}) does not exist: `clickhaul run` loads into the file "
            f"[destination.duckdb] credentials / {DUCKDB_CREDENTIALS_ENV} names, else into <pipeline>.duckdb in its "
            "working directory; set the variable for every command, or pass --database PATH"
        )


def configured_duckdb() -> tuple[str, str] | None:
    """dlt's `[destination.duckdb] credentials` (a path, or a table with `database`), and where it was found."""
    value: Any = os.environ.get(DUCKDB_CREDENTIALS_ENV)
    origin = DUCKDB_CREDENTIALS_ENV
    if not value:
        origin = f"[{DUCKDB_CREDENTIALS_KEY.rpartition('.')[0]}] credentials"
        value = dlt_files.toml_value(DUCKDB_CREDENTIALS_KEY)  # as dlt's providers find it, without importing dlt
    if isinstance(value, dict):
        value = value.get("database")
    return (str(value), origin) if value else None


def resolve_warehouse(
    pipeline: str,
    *,
    database: str | os.PathLike[str] | None = None,
    destination: str | None = None,
    default_name: str | None = None,
    pipelines_dir: str | None = None,
) -> Warehouse:
    """The warehouse of `pipeline` by the one rule; `default_name` replaces `<pipeline>` in the default file."""
    if database:
        if destination not in (None, DUCKDB):
            raise ConfigError(f"--database names a DuckDB file: leave out --destination {destination}, or --database")
        return Warehouse(DUCKDB, absolute(str(database)), "--database")
    if destination not in (None, DUCKDB):
        return Warehouse(str(destination), None, "--destination")
    configured = configured_duckdb()
    if configured:
        value, origin = configured
        if value == ":memory:":
            raise ConfigError(f"{origin} is :memory:: a warehouse other commands can read must be a file")
        if value == ":pipeline:":
            folder = Path(pipelines_dir or dlt_files.pipelines_dir()) / pipeline
            return Warehouse(DUCKDB, folder / f"{pipeline}.duckdb", origin)
        return Warehouse(DUCKDB, absolute(value), origin)
    name = default_name or pipeline
    return Warehouse(DUCKDB, absolute(f"{name}.duckdb"), f"the default of {name} in the working directory")


def absolute(path: str) -> Path:
    return (Path.cwd() / Path(path).expanduser()).resolve()


def configured_location(destination: str) -> str:
    """`database on host:port` from dlt's `destination.<name>.credentials`, never the password."""
    import dlt

    try:
        value: Any = dlt.secrets.get(f"destination.{destination}.credentials")
    except Exception:
        return ""
    if isinstance(value, dict):
        host, name = value.get("host"), value.get("database")
        return f"database {name} on {host}" if host or name else ""
    if not isinstance(value, str) or "://" not in value:
        return ""
    parts = urlsplit(value)
    where = f"{parts.hostname}:{parts.port}" if parts.port else str(parts.hostname)
    return f"database {parts.path.lstrip('/') or '?'} on {where}"


@contextmanager
def open_dataset(warehouse: Warehouse, dataset: str, *, read_only: bool = True) -> Iterator[WarehouseTables]:
    """A dataset of the warehouse for reading; a DuckDB file is waited for while another process holds it."""
    if warehouse.path is not None:
        from .duckdb_files import connect

        if not warehouse.path.exists():
            raise ConfigError(warehouse.missing_hint())
        connection = connect(warehouse.path, read_only=read_only)
        try:
            yield WarehouseTables(warehouse.describe(), dataset, connection=connection)
        finally:
            connection.close()
        return
    client = _sql_client(warehouse, dataset)
    try:
        yield WarehouseTables(warehouse.describe(), dataset, client=client)
    finally:
        client.close_connection()


def ledger_place(warehouse: Warehouse, default_ledger: str) -> LedgerPlace:
    """Where a push keeps its ledger: the DuckDB warehouse itself; a PostgreSQL warehouse, so any worker continues
    what another pushed (unless this directory holds a ledger from before, which stays in use: a second ledger
    would not know what the first one sent); else `default_ledger` here."""
    from destinations.common.ledger import PostgresLedgerPlace

    local = Path(default_ledger).resolve()
    if warehouse.path is not None:
        return warehouse.path
    if warehouse.destination != "postgres" or local.exists():
        return local

    return PostgresLedgerPlace(lambda: _sql_client(warehouse, "public").native_connection, warehouse.describe())


def _sql_client(warehouse: Warehouse, dataset: str) -> Any:
    """dlt's SQL client of the destination, connected; a missing credential or a refusal is one message."""
    import dlt
    from dlt.common.configuration.exceptions import ConfigFieldMissingException

    try:
        client = dlt.dataset(warehouse.dlt_destination(), dataset).sql_client
        client.open_connection()
    except ConfigFieldMissingException:
        variable = f"DESTINATION__{warehouse.destination.upper()}__CREDENTIALS"
        raise ConfigError(
            f"credentials of destination {warehouse.destination} are not set: set {variable} or "
            f"[destination.{warehouse.destination}] credentials in .dlt/secrets.toml"
        ) from None
    except Exception as error:
        raise ClickhaulError(
            f"cannot read dataset {dataset} of {warehouse.describe()}: {first_line(redact(str(error)))}"
        ) from None
    return client


def first_line(text: str) -> str:
    """The first non-empty line of a driver's message: whole words, never a cut."""
    return next((line.strip() for line in text.splitlines() if line.strip()), text.strip())


@contextmanager
def open_table(warehouse: Warehouse, table: str, *, read_only: bool = True) -> Iterator[TableRows]:
    """DATASET.TABLE of the warehouse, checked to exist, for reading in chunks."""
    dataset, name = split_table(table)
    with open_dataset(warehouse, dataset, read_only=read_only) as tables:
        yield TableRows.of(tables, name)
