"""`pipelines.dlt_files` reads dlt's files without importing dlt; these tests hold it to what dlt itself answers,
and hold `--help` and `status` to importing no dlt at all (the half second they must not pay)."""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
from pathlib import Path

import dlt
import pytest
from dlt.common.pipeline import get_dlt_pipelines_dir

from pipelines import dlt_files
from tests.support import ROOT


def test_pipelines_dir_is_dlts(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("DLT_DATA_DIR", raising=False)
    assert dlt_files.pipelines_dir() == Path(get_dlt_pipelines_dir())
    monkeypatch.setenv("DLT_DATA_DIR", str(tmp_path / "data"))
    assert dlt_files.pipelines_dir() == Path(get_dlt_pipelines_dir()) == tmp_path / "data" / "pipelines"


# dlt reads its TOML files once per process: each layout is compared in a fresh interpreter.
COMPARE = """
import json, sys
import dlt
from pipelines import dlt_files
answers = {}
for key in sys.argv[1:]:
    theirs = None
    for provider in (dlt.secrets, dlt.config):
        theirs = provider.get(key)
        if theirs is not None:
            break
    answers[key] = [theirs, dlt_files.config_value(key)]
print(json.dumps(answers, default=str))
"""


@pytest.mark.parametrize(
    "files, environment",
    [
        ({}, {}),
        ({"secrets.toml": '[destination.duckdb]\ncredentials = "s.duckdb"\n'}, {}),
        ({"config.toml": '[destination.duckdb]\ncredentials = "c.duckdb"\n[clickhaul]\nlock_timeout = 7\n'}, {}),
        (
            {
                "secrets.toml": '[destination.duckdb.credentials]\ndatabase = "table.duckdb"\n',
                "config.toml": '[destination.duckdb]\ncredentials = "loses.duckdb"\n',
            },
            {"CLICKHAUL__LOCK_TIMEOUT": "3"},
        ),
        ({"config.toml": "[destination.duckdb\nbroken"}, {}),
    ],
    ids=["nothing", "secrets", "config", "secrets-before-config-and-env", "unreadable"],
)
def test_config_values_are_dlts(tmp_path: Path, files: dict[str, str], environment: dict[str, str]) -> None:
    project = tmp_path / "project"
    (project / ".dlt").mkdir(parents=True)
    for name, text in files.items():
        (project / ".dlt" / name).write_text(text)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DESTINATION__", "CLICKHAUL__", "DLT_"))}
    env.update(environment, PYTHONPATH=str(ROOT))
    keys = ["destination.duckdb.credentials", "clickhaul.lock_timeout"]
    out = subprocess.run(
        [sys.executable, "-c", COMPARE, *keys], cwd=project, env=env, capture_output=True, text=True, check=False
    )
    if "broken" in files.get("config.toml", ""):  # dlt refuses the file; clickhaul leaves the refusal to it
        assert out.returncode != 0
        return
    assert out.returncode == 0, out.stderr
    for key, (theirs, ours) in json.loads(out.stdout).items():
        assert str(ours) == str(theirs), key


def test_state_and_tables_are_what_dlt_attach_reads(tmp_path: Path) -> None:
    @dlt.resource(name="visits", primary_key="id", write_disposition="merge")
    def visits() -> object:
        state = dlt.current.resource_state()
        state["incremental"] = {"day": {"last_value": dt.datetime(2026, 3, 1, 5, tzinfo=dt.UTC)}}
        state["watermarks"] = {"site": "2026-03-01"}
        yield [{"id": 1, "day": dt.date(2026, 3, 1)}]

    @dlt.resource(name="never_loaded", columns={"x": {}})
    def never_loaded() -> object:
        yield from ()

    pipeline = dlt.pipeline(
        "files_test", pipelines_dir=str(tmp_path), destination=dlt.destinations.duckdb(str(tmp_path / "x.duckdb"))
    )
    pipeline.run([visits(), never_loaded()])
    working_dir = Path(pipeline.working_dir)
    ours = dlt_files.read_state(working_dir)
    attached = dlt.attach("files_test", pipelines_dir=str(tmp_path))
    theirs = json.loads(json.dumps(dict(attached.state), default=lambda v: v.isoformat()))
    assert ours == theirs
    assert ours["sources"]["files_test"]["resources"]["visits"]["incremental"]["day"]["last_value"].startswith(
        "2026-03-01T05:00:00"
    )
    schema = attached.default_schema
    assert dlt_files.data_table_names(working_dir, schema.name) == schema.data_table_names() == ["visits"]


@pytest.mark.parametrize("command", [["--help"], ["status"], ["status", "--json"], ["run", "--help"]])
def test_help_and_status_import_no_dlt(tmp_path: Path, command: list[str]) -> None:
    """Importing dlt costs about half a second, more than these commands may take in all (bench: `fixed cost`)."""
    pipeline = dlt.pipeline(
        "clickhaul_pirsch",
        pipelines_dir=str(tmp_path / "dlt" / "pipelines"),
        destination=dlt.destinations.duckdb(str(tmp_path / "clickhaul_pirsch.duckdb")),
        dataset_name="pirsch",
    )
    pipeline.run([{"day": "2026-03-01", "visitors": 3}], table_name="visitors")
    script = (
        "import sys\nfrom pipelines.cli import cli\n"
        f"try:\n    cli.main({command!r}, standalone_mode=False)\nexcept SystemExit:\n    pass\n"
        "print('HEAVY', sorted({m.split('.')[0] for m in sys.modules} & {'dlt', 'pyarrow', 'dbt', 'httpx'}))"
    )
    env = {**os.environ, "DLT_DATA_DIR": str(tmp_path / "dlt"), "PYTHONPATH": str(ROOT)}
    env.pop("DESTINATION__DUCKDB__CREDENTIALS", None)
    out = subprocess.run(
        [sys.executable, "-c", script], cwd=tmp_path, env=env, capture_output=True, text=True, check=False
    )
    assert "HEAVY []" in out.stdout, out.stdout[-2000:] + out.stderr[-2000:]
    if command[0] == "status":  # and it still reads the state and the warehouse
        assert '"visitors": 1' in out.stdout or "visitors           1" in out.stdout, out.stdout
