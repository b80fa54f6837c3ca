"""Run clickhaul's dbt package (`dbt/`) in-process with dbt's programmatic API, against the destination a load used.

The profile (`dbt/profiles.yml`) reads everything from environment variables, which `run_dbt` sets for the length of
one invocation: the DuckDB file, or PostgreSQL credentials (the password is registered as a secret and never written
to a file). dbt's target and log folders go to a fresh temporary directory, so concurrent runs cannot collide.
"""

from __future__ import annotations

import gc
import json
import os
import sys
import tempfile
import urllib.parse
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from sources.common.config import environment
from sources.common.errors import ClickhaulError, ConfigError
from sources.common.redact import redact, register_secret

PROJECT_DIR = Path(__file__).resolve().parent.parent / "dbt"
COMMANDS = ("run", "test", "build", "compile", "parse", "debug", "seed", "docs")
Target = Literal["duckdb", "postgres"]
TARGETS: tuple[str, ...] = ("duckdb", "postgres")
DEFAULT_SCHEMA = "analytics"
# Webtrekk rows do not say which account they belong to: the configured customer id names the site.
WEBTREKK_SITE_KEYS = ("sources.webtrekk.customer_id", "sources.webtrekk.credentials.customer_id")


class DbtError(ClickhaulError):
    """dbt could not run, or a model or test failed."""


@dataclass(frozen=True)
class NodeResult:
    name: str
    kind: str  # model, test, ...
    status: str  # success, pass, fail, error, skipped, warn
    message: str = ""
    failures: int | None = None


@dataclass
class DbtResult:
    command: str
    target: str
    success: bool
    nodes: list[NodeResult] = field(default_factory=list)
    error: str | None = None
    location: str = ""  # the DuckDB file or database it ran on

    def failed(self) -> list[NodeResult]:
        return [node for node in self.nodes if node.status in ("fail", "error", "runtime error")]

    def render(self) -> str:
        counts: dict[str, int] = {}
        for node in self.nodes:
            counts[node.status] = counts.get(node.status, 0) + 1
        summary = ", ".join(f"{count} {status}" for status, count in sorted(counts.items())) or "nothing ran"
        lines = [f"dbt {self.command} ({self.target}): {'ok' if self.success else 'FAILED'}: {summary}"]
        if self.location:
            lines.append(f"  on {self.location}")
        for node in self.failed():
            detail = f" ({node.failures} failing rows)" if node.failures else ""
            lines.append(f"  {node.status}: {node.kind} {node.name}{detail}: {node.message}".rstrip(": "))
        if self.error:
            lines.append(f"  error: {self.error}")
        return redact("\n".join(lines))


def postgres_environment(credentials: Any) -> dict[str, str]:
    """CLICKHAUL_DBT_PG_* from a postgresql:// URL or dlt credentials (anything with to_native_representation)."""
    url = credentials if isinstance(credentials, str) else credentials.to_native_representation()
    parts = urllib.parse.urlsplit(url)
    if parts.scheme.split("+")[0] not in ("postgres", "postgresql"):
        raise ConfigError("PostgreSQL credentials must be a postgresql://user:password@host:port/database URL")
    password = urllib.parse.unquote(parts.password or "")
    register_secret(password)
    query = dict(urllib.parse.parse_qsl(parts.query))
    return {
        "CLICKHAUL_DBT_PG_HOST": parts.hostname or "127.0.0.1",
        "CLICKHAUL_DBT_PG_PORT": str(parts.port or 5432),
        "CLICKHAUL_DBT_PG_USER": urllib.parse.unquote(parts.username or ""),
        "CLICKHAUL_DBT_PG_PASSWORD": password,
        "CLICKHAUL_DBT_PG_DATABASE": parts.path.lstrip("/") or "postgres",
        "CLICKHAUL_DBT_PG_SSLMODE": query.get("sslmode", "prefer"),
    }


def configured_postgres_credentials() -> str:
    """The credentials `clickhaul run --destination postgres` uses (dlt config: destination.postgres.credentials)."""
    import dlt

    try:
        value: Any = dlt.secrets.get("destination.postgres.credentials")
    except Exception:
        value = None
    if not value:
        raise ConfigError(
            "PostgreSQL credentials missing: set DESTINATION__POSTGRES__CREDENTIALS (postgresql://user:password@host:"
            "port/database) or [destination.postgres] credentials in .dlt/secrets.toml"
        )
    if isinstance(value, Mapping):
        user = urllib.parse.quote(str(value.get("username", "")), safe="")
        password = urllib.parse.quote(str(value.get("password", "")), safe="")
        host, port = value.get("host", "127.0.0.1"), value.get("port", 5432)
        return f"postgresql://{user}:{password}@{host}:{port}/{value.get('database', 'postgres')}"
    return str(value)


def configured_vars() -> dict[str, Any]:
    """Package vars clickhaul can fill from its own config: Webtrekk's customer id names the Webtrekk site."""
    import dlt

    found: dict[str, Any] = {}
    for key in WEBTREKK_SITE_KEYS:
        try:
            value: Any = dlt.secrets.get(key) or dlt.config.get(key)
        except Exception:
            value = None
        if value:
            found["clickhaul_webtrekk_site_id"] = str(value)
            break
    return found


def target_environment(target: str, database_path: str | Path | None, credentials: Any, schema: str) -> dict[str, str]:
    if target not in TARGETS:
        raise ConfigError(f"--target must be one of {', '.join(TARGETS)}, not {target!r}")
    env = {"CLICKHAUL_DBT_TARGET": target, "CLICKHAUL_DBT_SCHEMA": schema}
    if target == "duckdb":
        if database_path is None:
            raise ConfigError("--database is required for the duckdb target: the DuckDB file clickhaul loaded into")
        path = Path(database_path).expanduser().resolve()
        if not path.is_file():
            from .warehouse import Warehouse

            raise ConfigError(Warehouse("duckdb", path, "--database").missing_hint())
        from .duckdb_files import wait_for_lock

        wait_for_lock(path)  # dbt-duckdb would fail at once on a file another process holds
        env["CLICKHAUL_DBT_DUCKDB_PATH"] = str(path)
    else:
        env.update(postgres_environment(credentials if credentials is not None else configured_postgres_credentials()))
    return env


@contextmanager
def _work_dir(work_dir: Path | None) -> Iterator[Path]:
    if work_dir is not None:
        work_dir.mkdir(parents=True, exist_ok=True)
        yield work_dir
        return
    with tempfile.TemporaryDirectory(prefix="clickhaul-dbt-") as temporary:
        yield Path(temporary)


def run_dbt(
    command: str,
    *,
    target: str = "duckdb",
    database_path: str | Path | None = None,
    credentials: Any = None,
    schema: str = DEFAULT_SCHEMA,
    vars: Mapping[str, Any] | None = None,
    select: Sequence[str] = (),
    quiet: bool = False,
    work_dir: Path | None = None,
    extra_args: Sequence[str] = (),
) -> DbtResult:
    """Run `dbt <command>` on the package against a DuckDB file (`database_path`) or PostgreSQL (`credentials`: a URL
    or dlt credentials; default: dlt's destination.postgres.credentials). Models land in `schema` (marts) and
    `<schema>_staging`. Never raises for failing models or tests: see `DbtResult.success`; raises `DbtError` only when
    dbt is not installed."""
    if command not in COMMANDS:
        raise ConfigError(f"dbt command must be one of {', '.join(COMMANDS)}, not {command!r}")
    try:
        from dbt.cli.main import dbtRunner
    except ImportError as error:  # pragma: no cover - depends on the installation
        raise DbtError(f"dbt is not installed ({error}): pip install 'clickhaul[dbt]'") from None

    env = target_environment(target, database_path, credentials, schema)
    merged_vars = {**configured_vars(), **(vars or {})}
    with _work_dir(work_dir) as folder:
        args = [
            command,
            "--project-dir",
            str(PROJECT_DIR),
            "--profiles-dir",
            str(PROJECT_DIR),
            "--target-path",
            str(folder / "target"),
            "--log-path",
            str(folder / "logs"),
        ]
        if command not in ("debug", "docs"):
            args += ["--vars", json.dumps(merged_vars)] if merged_vars else []
        if select:
            args += ["--select", *select]
        args += list(extra_args)
        prefix = ["--quiet"] if quiet else []
        if not sys.stdout.isatty():
            prefix.append("--no-use-colors")  # scheduler logs and captured output get plain text
        env.update({"DBT_SEND_ANONYMOUS_USAGE_STATS": "false", "DO_NOT_TRACK": "1"})
        with environment(env):
            try:
                outcome = dbtRunner().invoke([*prefix, *args])
            finally:
                if target == "duckdb":
                    release_duckdb()
    result = _result(command, target, outcome)
    if target == "duckdb":
        result.location = f"DuckDB file {env['CLICKHAUL_DBT_DUCKDB_PATH']}"
    else:
        result.location = f"database {env['CLICKHAUL_DBT_PG_DATABASE']} on {env['CLICKHAUL_DBT_PG_HOST']}"
    return result


def release_duckdb() -> None:
    """Close the DuckDB database dbt-duckdb keeps open in this process after a run: otherwise the file stays locked
    to its configuration and the report, the demo or a later load cannot open it (dbt-duckdb offers no public way)."""
    try:
        from dbt.adapters.duckdb.connections import DuckDBConnectionManager
    except ImportError:  # pragma: no cover
        return
    with DuckDBConnectionManager._LOCK:
        env = DuckDBConnectionManager._ENV
        DuckDBConnectionManager._ENV = None
        if env is not None:
            try:
                env.close()
            except Exception:  # closing a half-open database must not hide the run's own result
                pass
    gc.collect()


def _result(command: str, target: str, outcome: Any) -> DbtResult:
    nodes: list[NodeResult] = []
    for item in getattr(outcome.result, "results", None) or []:
        node = getattr(item, "node", None)
        status = str(getattr(item.status, "value", item.status))
        nodes.append(
            NodeResult(
                name=getattr(node, "name", "?"),
                kind=str(getattr(node, "resource_type", "?")),
                status=status,
                message=str(item.message or ""),
                failures=getattr(item, "failures", None),
            )
        )
    error = redact(str(outcome.exception)) if outcome.exception is not None else None
    return DbtResult(command, target, bool(outcome.success), nodes, error)


def pipeline_target(pipeline: Any) -> dict[str, Any]:
    """`run_dbt` keyword arguments for the destination a dlt pipeline loaded into (for `clickhaul run --dbt`)."""
    name = pipeline.destination.destination_name
    credentials = pipeline.destination_client().config.credentials
    if name == "duckdb":
        return {"target": "duckdb", "database_path": credentials.database}
    if name == "postgres":
        return {"target": "postgres", "credentials": credentials}
    raise ConfigError(f"the dbt package runs on duckdb and postgres destinations, not {name!r}")


def read_rows(
    sql: str, *, target: str = "duckdb", database_path: str | Path | None = None, credentials: Any = None
) -> list[tuple[Any, ...]]:
    """Rows of a query on the target the marts were built in (the report and the demo read through this)."""
    if target == "duckdb":
        from .duckdb_files import connect

        with connect(Path(str(database_path)), read_only=True) as connection:
            return connection.execute(sql).fetchall()
    import psycopg2

    env = postgres_environment(credentials if credentials is not None else configured_postgres_credentials())
    connection = psycopg2.connect(
        host=env["CLICKHAUL_DBT_PG_HOST"],
        port=int(env["CLICKHAUL_DBT_PG_PORT"]),
        user=env["CLICKHAUL_DBT_PG_USER"],
        password=env["CLICKHAUL_DBT_PG_PASSWORD"],
        dbname=env["CLICKHAUL_DBT_PG_DATABASE"],
        sslmode=env["CLICKHAUL_DBT_PG_SSLMODE"],
    )
    try:
        with connection.cursor() as cursor:
            cursor.execute(sql)
            return list(cursor.fetchall())
    finally:
        connection.close()


def demo_step(
    database_path: str | Path, echo: Callable[[str], None] = print, vars: Mapping[str, Any] | None = None
) -> DbtResult:
    """The end of `clickhaul demo`: build the marts on the demo file and show a few rows of fct_traffic_daily;
    `vars` are the dbt variables the demo's plans name (the simulated Webtrekk account, say)."""
    echo("\ndbt: building the staging models and marts (dbt build) ...")
    result = run_dbt("build", database_path=database_path, vars=dict(vars or {}), quiet=True)
    echo(result.render())
    if not result.success:
        return result
    rows = read_rows(
        "select vendor, site_id, day, visitors, visits, pageviews, bounce_rate "
        f"from {DEFAULT_SCHEMA}.fct_traffic_daily order by day desc, vendor, site_id limit 8",
        database_path=database_path,
    )
    echo(f"\n{DEFAULT_SCHEMA}.fct_traffic_daily (latest days):")
    echo(f"  {'vendor':<12} {'site':<38} {'day':<10} {'visitors':>9} {'visits':>8} {'views':>8} {'bounce':>7}")
    for vendor, site, day, visitors, visits, pageviews, bounce_rate in rows:
        rate = "" if bounce_rate is None else f"{bounce_rate:.0%}"
        echo(
            f"  {vendor:<12} {site[:38]:<38} {day!s:<10} {_number(visitors):>9} {_number(visits):>8} "
            f"{_number(pageviews):>8} {rate:>7}"
        )
    echo("report: clickhaul report --database " + os.fspath(database_path) + " --out report.html")
    return result


def _number(value: Any) -> str:
    return "" if value is None else f"{value:,}"
