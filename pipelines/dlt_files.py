"""What dlt keeps on disk, read without importing dlt: its pipelines folder, a pipeline's saved state and schema,
and a key of its TOML configuration.

`import dlt` takes about half a second, more than all of `clickhaul status` may. These readers follow dlt's own
rules (its default run context: `DLT_DATA_DIR`, `DLT_PROJECT_DIR`, `DLT_CONFIG_FOLDER`, the global folder); the
tests hold them equal to what dlt itself answers.
"""

from __future__ import annotations

import json
import os
import tempfile
import tomllib
from pathlib import Path
from typing import Any

STATE_FILE = "state.json"
PUA_START = 0xF026  # dlt's typed JSON marks dates, decimals, ... with one private-use character before the text
PUA_TAGS = 8


def config_folder_name() -> str:
    return os.environ.get("DLT_CONFIG_FOLDER", ".dlt")


def global_dir() -> Path:
    """dlt's global folder: /var/dlt for root, else ~/.dlt (XDG_DATA_HOME/dlt when set and ~/.dlt is absent),
    else the temporary folder's dlt."""
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        return Path("/var", "dlt")
    home = os.path.expanduser("~")
    if not home or not os.access(home, os.W_OK):
        return Path(tempfile.gettempdir(), "dlt")
    dot = Path(home, config_folder_name())
    if "XDG_DATA_HOME" in os.environ and not dot.is_dir():
        return Path(os.environ["XDG_DATA_HOME"], "dlt")
    return dot


def pipelines_dir() -> Path:
    """What `dlt.common.pipeline.get_dlt_pipelines_dir()` answers in dlt's default run context."""
    return Path(os.environ.get("DLT_DATA_DIR") or global_dir()) / "pipelines"


def settings_dir() -> Path:
    return Path(os.environ.get("DLT_PROJECT_DIR") or os.getcwd()) / config_folder_name()


def config_value(key: str) -> Any:
    """`key` as `dlt.config.get` finds it in dlt's default providers: the environment variable (KEY__PATH), then
    the TOML files. A value from the environment is its text; dlt would parse it only against a declared type."""
    return os.environ.get("__".join(key.upper().split("."))) or toml_value(key)


def toml_value(key: str) -> Any:
    """`key` (dotted: "destination.duckdb.credentials") as dlt's TOML providers find it: secrets.toml before
    config.toml, the project's `.dlt` before the global folder. None where no file sets it."""
    values = toml_values(key)
    return values[0] if values else None


def toml_values(key: str) -> list[Any]:
    """Every value TOML files set for `key`, in `toml_value`'s order (tables that dlt would merge)."""
    found = []
    for file_name in ("secrets.toml", "config.toml"):
        for folder in (settings_dir(), global_dir()):
            value = _lookup(_read_toml(folder / file_name), key.split("."))
            if value is not None:
                found.append(value)
    return found


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as file:
            return tomllib.load(file)
    except (OSError, tomllib.TOMLDecodeError):  # unreadable TOML is dlt's to report, on the run itself
        return {}


def _lookup(document: Any, parts: list[str]) -> Any:
    for part in parts:
        if not isinstance(document, dict) or part not in document:
            return None
        document = document[part]
    return document


def read_state(working_dir: Path) -> dict[str, Any]:
    """A pipeline's saved state (`state.json`), with dlt's typed values as their plain text."""
    return _untyped(json.loads((working_dir / STATE_FILE).read_text()))


def _untyped(value: Any) -> Any:
    if isinstance(value, str) and value and PUA_START <= ord(value[0]) < PUA_START + PUA_TAGS:
        return value[1:]
    if isinstance(value, dict):
        return {key: _untyped(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_untyped(item) for item in value]
    return value


def data_table_names(working_dir: Path, schema_name: str) -> list[str]:
    """The tables of a pipeline's schema that hold data (dlt's `Schema.data_table_names()`): not dlt's own, and
    with at least one complete column."""
    path = working_dir / "schemas" / f"{schema_name}.schema.json"
    try:
        tables = json.loads(path.read_text()).get("tables") or {}
    except (OSError, ValueError):
        return []
    return [
        name
        for name, table in tables.items()
        if not name.startswith("_dlt") and any(_complete(column) for column in (table.get("columns") or {}).values())
    ]


def _complete(column: dict[str, Any]) -> bool:
    return bool(column.get("data_type")) and bool(column.get("name"))
