"""What `speed_up_dlt` remembers must answer exactly as dlt's own functions do, and validation must still fail."""

# dlt's own specs spell hints with typing.Optional/Union: the remembered functions must answer for those forms.
# ruff: noqa: UP007, UP045

from __future__ import annotations

import subprocess
import sys
from typing import Annotated, Any, Optional, Union

import pytest
from dlt.common.configuration.specs import BaseConfiguration, CredentialsConfiguration
from dlt.common.configuration.specs.base_configuration import SecretSentinel
from dlt.common.exceptions import DictValidationException
from dlt.common.schema.typing import TColumnSchema, TTableSchema
from dlt.common.typing import TSecretStrValue, TSecretValue

from pipelines.dlt_settings import remember_per_hint, remember_type_hints, speed_up_dlt

HINTS: list[Any] = [
    str,
    int,
    Optional[str],
    TSecretValue,
    TSecretStrValue,
    Optional[TSecretStrValue],
    Annotated[str, SecretSentinel],
    Annotated[Optional[str], "a note"],
    CredentialsConfiguration,
    Optional[CredentialsConfiguration],
    Union[CredentialsConfiguration, str],
    TTableSchema,
    Optional[TColumnSchema],
    dict[str, Any],
    str | None,
]


def test_remembered_hint_questions_answer_as_dlt_does() -> None:
    from dlt.common import typing as dlt_typing
    from dlt.common.configuration.specs import base_configuration

    speed_up_dlt()
    for module, name in ((base_configuration, "is_secret_hint"), (dlt_typing, "is_typeddict")):
        remembered = getattr(module, name)
        original = remembered.__wrapped_original__
        for hint in HINTS:
            assert remembered(hint) == original(hint), (name, hint)
            assert remembered(hint) == original(hint), (name, hint)  # the remembered answer, second time
    assert base_configuration.is_secret_hint(TSecretStrValue) is True
    assert base_configuration.is_secret_hint(str) is False


def test_unions_are_fresh_lists_each_time() -> None:
    from dlt.common import typing as dlt_typing

    speed_up_dlt()
    hint = Union[CredentialsConfiguration, BaseConfiguration, str]
    first = dlt_typing.get_all_types_of_class_in_union(hint, BaseConfiguration)
    original = dlt_typing.get_all_types_of_class_in_union.__wrapped_original__  # type: ignore[attr-defined]
    assert first == original(hint, BaseConfiguration)
    first.clear()
    assert dlt_typing.get_all_types_of_class_in_union(hint, BaseConfiguration) == original(hint, BaseConfiguration)
    assert dlt_typing.get_all_types_of_class_in_union(hint, CredentialsConfiguration, with_superclass=True) == original(
        hint, CredentialsConfiguration, with_superclass=True
    )


def test_unhashable_hint_is_asked_every_time() -> None:
    calls: list[Any] = []

    def question(hint: Any) -> bool:
        calls.append(hint)
        return isinstance(hint, list)

    remembered = remember_per_hint(question)
    assert remembered([1]) is True and remembered([1]) is True
    assert len(calls) == 2
    assert remembered(int) is False and remembered(int) is False
    assert len(calls) == 3


def test_type_hints_are_a_copy_and_other_calls_pass_through() -> None:
    from typing_extensions import get_type_hints

    remembered = remember_type_hints(get_type_hints)
    hints = remembered(TTableSchema)
    assert hints == get_type_hints(TTableSchema)
    hints.clear()
    assert remembered(TTableSchema) == get_type_hints(TTableSchema)
    localns = {"Any": Any}
    assert remembered(TColumnSchema, None, localns) == get_type_hints(TColumnSchema, None, localns)


def test_validation_still_rejects_bad_tables() -> None:
    from dlt.common.validation import validate_dict

    speed_up_dlt()
    validate_dict(TTableSchema, {"name": "t", "columns": {"a": {"name": "a", "data_type": "text"}}}, "t")
    with pytest.raises(DictValidationException):
        validate_dict(TTableSchema, {"name": "t", "columns": {"a": {"name": "a", "data_type": "no such"}}}, "t")
    with pytest.raises(DictValidationException):
        validate_dict(TTableSchema, {"name": "t", "unknown_key": 1}, "t")
    with pytest.raises(DictValidationException):
        validate_dict(TTableSchema, {"name": 5}, "t")


def test_httpx_without_its_cli() -> None:
    code = (
        "import sys\n"
        "from pipelines.dlt_settings import leave_out_httpx_cli\n"
        "leave_out_httpx_cli()\n"
        "import httpx\n"
        "assert 'rich' not in sys.modules and sys.modules['httpx._main'] is None\n"
        "assert httpx.Client and httpx.AsyncClient and callable(httpx.main)\n"
        "print('ok')\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ok"


def test_a_saved_schema_is_read_again_only_when_its_file_changed(tmp_path: Any, monkeypatch: Any) -> None:
    from dlt.common.schema import Schema
    from dlt.common.storages import SchemaStorageConfiguration
    from dlt.common.storages.live_schema_storage import LiveSchemaStorage
    from dlt.common.storages.schema_storage import SchemaStorage

    speed_up_dlt()
    config = SchemaStorageConfiguration(schema_volume_path=str(tmp_path))
    storage = LiveSchemaStorage(config, makedirs=True)
    schema = Schema("visits")
    schema.update_table({"name": "pages", "columns": {"url": {"name": "url", "data_type": "text"}}})
    storage.save_schema(schema)
    reads: list[str] = []
    load_schema = SchemaStorage.load_schema
    monkeypatch.setattr(SchemaStorage, "load_schema", lambda self, name: reads.append(name) or load_schema(self, name))

    first = storage["visits"]
    assert storage["visits"] is first and storage["visits"] is first
    assert len(reads) <= 1  # the file as this storage wrote it: not read again

    # another process adds a column and saves the schema: the next access reads the file
    other = SchemaStorage(config)
    changed = other.load_schema("visits")
    changed.update_table({"name": "pages", "columns": {"title": {"name": "title", "data_type": "text"}}})
    other.save_schema(changed)
    again = storage["visits"]
    assert again is first  # dlt keeps the live instance and replaces its content
    assert "title" in again.tables["pages"]["columns"]
    assert len(reads) >= 2

    # a change not yet saved is this process's own: handed back as it is, never overwritten from the file
    again.update_table({"name": "pages", "columns": {"referrer": {"name": "referrer", "data_type": "text"}}})
    assert "referrer" in storage["visits"].tables["pages"]["columns"]


def test_trace_hints_are_the_same_yaml() -> None:
    import yaml
    from dlt.extract import extract

    speed_up_dlt()
    columns = {"url": {"name": "url", "data_type": "text", "nullable": False}, "título": {"data_type": "bigint"}}
    options = {"allow_unicode": True, "default_flow_style": False, "sort_keys": False}
    assert extract.yaml.dump(columns, **options) == yaml.dump(columns, **options)
    assert extract.yaml.safe_load is yaml.safe_load


def test_capabilities_are_worked_out_once_per_run_and_handed_out_as_copies(tmp_path: Any) -> None:
    import dlt
    from dlt.common.destination.reference import Destination

    from pipelines.dlt_settings import capabilities_remembered, remember_capabilities

    speed_up_dlt()
    original = Destination.capabilities.__wrapped_original__  # type: ignore[attr-defined]
    asked: list[Any] = []

    def counting(destination: Any, config: Any = None, naming: Any = None) -> Any:
        asked.append(destination)
        return original(destination, config, naming)

    destination = dlt.destinations.duckdb(str(tmp_path / "a.duckdb"))
    remembered = remember_capabilities(counting)
    with capabilities_remembered():
        first = remembered(destination)
        second = remembered(destination)
        assert first == second and first is not second
        second.preferred_loader_file_format = "jsonl"  # what dlt does to the capabilities it is given
        assert remembered(destination).preferred_loader_file_format == first.preferred_loader_file_format
        assert len(asked) == 1
        other = dlt.destinations.duckdb(str(tmp_path / "b.duckdb"))
        remembered(other)
        assert len(asked) == 2  # another destination is asked
        destination.config_params["destination_name"] = "renamed"
        remembered(destination)
        assert len(asked) == 3  # changed settings are asked again
        remembered(destination, destination.spec())  # an explicit configuration passes through
        assert len(asked) == 4
    remembered(destination)
    remembered(destination)
    assert len(asked) == 6  # outside a run, every call asks
