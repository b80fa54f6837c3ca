"""dlt's fixed cost of a run, cut where it is pure repetition (issue 20).

A py-spy profile of a no-change Pirsch daily run (28 tables) spent about a fifth of the run re-deriving the same
answers about Python types: dlt validates every computed table schema against its TypedDicts, calling
`get_type_hints` on them each time (dlt's own TODO says to cache it), and its configuration resolution asks
`is_secret_hint`, `is_typeddict` and which classes a union holds of the same hints for every field of every config
it resolves (800 resolutions, 13k `is_secret_hint` calls in that run: each buffered writer, job client, merge
strategy lookup). These are functions of a type alone, so their answers are remembered per type (a cProfile of the
run: 6.15M function calls before, 4.49M after). Nothing else changes: the same validation runs on the same
documents, the same configuration is resolved from the same providers.

Two more of the same kind, measured on the same run: every `pipeline.default_schema` read the schema's JSON file
again and rebuilt it (21 times, 105 ms of the run) although nothing had written it, and the extract step's trace
rendered every resource's column hints as YAML with PyYAML's pure-Python emitter (the C one writes the same text).
And within one `pipeline.run`, dlt asked the destination for its capabilities 13 times, each resolving the
destination's configuration again (5.5 ms each); `capabilities_remembered` answers the repeats with a copy of the
first answer.
"""

from __future__ import annotations

import copy
import functools
import logging
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

log = logging.getLogger("clickhaul.dlt")


def remember_type_hints(get_type_hints: Callable[..., dict[str, Any]]) -> Callable[..., dict[str, Any]]:
    """`get_type_hints` of a class, once per class: dlt's `validate_dict` asks it of the same TypedDicts (a table
    schema, its columns) for every table and every column. Calls with other arguments pass through."""

    @functools.cache
    def hints_of(spec: type, include_extras: bool) -> dict[str, Any]:
        module = sys.modules.get(spec.__module__)
        return get_type_hints(spec, globalns=module.__dict__ if module else None, include_extras=include_extras)

    @functools.wraps(get_type_hints)
    def cached(
        obj: Any, globalns: dict[str, Any] | None = None, localns: Any = None, include_extras: bool = False
    ) -> dict[str, Any]:
        module = sys.modules.get(getattr(obj, "__module__", ""), None)
        own_namespace = globalns is None or (module is not None and globalns is module.__dict__)
        if isinstance(obj, type) and localns is None and own_namespace:
            return dict(hints_of(obj, include_extras))  # a copy: callers may not change the remembered one
        return get_type_hints(obj, globalns=globalns, localns=localns, include_extras=include_extras)

    cached.__wrapped_original__ = get_type_hints  # type: ignore[attr-defined]
    return cached


def remember_per_hint(function: Callable[[Any], bool]) -> Callable[[Any], bool]:
    """A yes/no question about a type hint, answered once per hint; an unhashable hint is asked every time."""
    remembered = functools.lru_cache(maxsize=4096)(function)

    @functools.wraps(function)
    def cached(hint: Any) -> bool:
        try:
            return remembered(hint)
        except TypeError:  # unhashable (an Annotated with a dict in it): not worth remembering
            return function(hint)

    cached.__wrapped_original__ = function  # type: ignore[attr-defined]
    return cached


def _remember_args(function: Callable[..., list[Any]]) -> Callable[..., list[Any]]:
    """A list of the types in a union that are (sub)classes of a class, once per (hint, class); a fresh copy each
    time, since a caller may change its list."""

    @functools.lru_cache(maxsize=4096)
    def remembered(hint: Any, cls: Any, with_superclass: bool) -> tuple[Any, ...]:
        return tuple(function(hint, cls, with_superclass=with_superclass))

    @functools.wraps(function)
    def cached(hint: Any, cls: Any, with_superclass: bool = False) -> list[Any]:
        try:
            return list(remembered(hint, cls, with_superclass))
        except TypeError:  # an unhashable hint
            return function(hint, cls, with_superclass=with_superclass)

    cached.__wrapped_original__ = function  # type: ignore[attr-defined]
    return cached


def _replace_everywhere(original: Any, replacement: Any) -> None:
    """dlt's modules import these functions by name: each loaded module that holds the original gets the
    replacement (modules loaded later import the replacement from where it is defined)."""
    for name, module in list(sys.modules.items()):
        if module is None or not (name == "dlt" or name.startswith("dlt.")):
            continue
        for attribute, value in list(vars(module).items()):
            if value is original:
                setattr(module, attribute, replacement)


def remember_unchanged_schemas(getitem: Callable[[Any, str], Any]) -> Callable[[Any, str], Any]:
    """`LiveSchemaStorage.__getitem__` that hands back the live schema while its file is as this storage last read
    or wrote it. dlt reads the file again at every access to a saved schema, to pick up a change made by someone
    else; a change shows in the file's inode, size or modification time, and then the file is read as before. An
    unsaved live schema, and storages that import schemas from a folder, take dlt's own path every time."""

    @functools.wraps(getitem)
    def cached(storage: Any, name: str) -> Any:
        live = storage.live_schemas.get(name)
        seen = storage.__dict__.setdefault("_clickhaul_seen", {})
        unsaved = live is None or live.is_modified or storage.config.import_schema_path
        # stamped before reading: a file written between dlt's read and the stamp shows as changed next time
        stamp = _stamp(storage, name)
        if stamp is not None and not unsaved and seen.get(name) == (stamp, live.version_hash):
            return live
        schema = getitem(storage, name)
        if stamp is not None and not schema.is_modified:
            seen[name] = (stamp, schema.version_hash)
        return schema

    cached.__wrapped_original__ = getitem  # type: ignore[attr-defined]
    return cached


def _stamp(storage: Any, name: str) -> tuple[int, int, int] | None:
    """The schema file's identity, or None when there is no file or this dlt names it differently: not remembered."""
    try:
        stat = os.stat(storage.storage.make_full_path(storage._file_name_in_store(name, "json")))
    except (OSError, AttributeError):
        return None
    return stat.st_ino, stat.st_size, stat.st_mtime_ns


_run_capabilities: dict[tuple[Any, ...], tuple[Any, ...]] | None = None


@contextmanager
def capabilities_remembered() -> Iterator[None]:
    """Within the block, a destination's capabilities are worked out once per naming convention and destination
    settings: the configuration they come from cannot change in the middle of a run (an account's settings are set
    before it starts). Outside it, every call asks the destination as dlt does."""
    global _run_capabilities
    previous, _run_capabilities = _run_capabilities, {}
    try:
        yield
    finally:
        _run_capabilities = previous


def remember_capabilities(capabilities: Callable[..., Any]) -> Callable[..., Any]:
    """`Destination.capabilities` for `capabilities_remembered`: a call with an explicit configuration, or outside a
    run, passes through; each answer is a deep copy, since dlt sets file formats on the capabilities it is given."""

    @functools.wraps(capabilities)
    def cached(destination: Any, config: Any = None, naming: Any = None) -> Any:
        memo = _run_capabilities
        if config is not None or memo is None:
            return capabilities(destination, config, naming)
        settings = tuple(sorted(destination.config_params.items()))
        ids = tuple((name, id(value)) for name, value in settings)
        key = (id(destination), ids, id(naming), getattr(naming, "max_length", None))
        entry = memo.get(key)
        if entry is None:
            # the entry holds what its key names by id, so no id is reused by another object during the run
            entry = memo[key] = (capabilities(destination, None, naming), destination, settings, naming)
        return copy.deepcopy(entry[0])

    cached.__wrapped_original__ = capabilities  # type: ignore[attr-defined]
    return cached


class _CYaml:
    """The `yaml` dlt's extract step knows, with libyaml's emitter where PyYAML was built with it."""

    def __getattr__(self, name: str) -> Any:
        import yaml  # type: ignore[import-untyped]

        return getattr(yaml, name)

    @staticmethod
    def dump(data: Any, stream: Any = None, **options: Any) -> Any:
        import yaml  # type: ignore[import-untyped]

        return yaml.dump(data, stream, Dumper=getattr(yaml, "CDumper", yaml.Dumper), **options)


def leave_out_httpx_cli() -> None:
    """`import httpx` also imports its command-line client (rich, pygments: ~36 ms of every clickhaul command)
    unless that import fails, when httpx defines a stand-in `httpx.main`. clickhaul never runs httpx's CLI."""
    sys.modules.setdefault("httpx._main", None)  # type: ignore[arg-type]


@functools.cache
def speed_up_dlt() -> None:
    """Once per process, before dlt's first run. `get_type_hints` is remembered for `validate_dict` only (it asks
    of TypedDicts, which never change); a class being built (a configspec) may change its annotations later."""
    from dlt.common import typing as dlt_typing
    from dlt.common import validation
    from dlt.common.configuration.specs import base_configuration
    from dlt.common.destination.reference import Destination
    from dlt.common.storages.live_schema_storage import LiveSchemaStorage
    from dlt.extract import extract

    wrap_in_place(validation, "get_type_hints", remember_type_hints)
    wrap_in_place(LiveSchemaStorage, "__getitem__", remember_unchanged_schemas)
    wrap_in_place(Destination, "capabilities", remember_capabilities)
    wanted: list[tuple[Any, str, Callable[[Any], Any]]] = [
        (base_configuration, "is_secret_hint", remember_per_hint),
        (dlt_typing, "is_typeddict", remember_per_hint),
        (dlt_typing, "get_all_types_of_class_in_union", _remember_args),
    ]
    for module, name, wrap in wanted:
        original = getattr(module, name, None)
        if original is None or getattr(original, "__wrapped_original__", None) is not None:
            log.debug("dlt has no %s.%s to remember, or it is remembered already", module.__name__, name)
            continue
        _replace_everywhere(original, wrap(original))
    if getattr(extract, "yaml", None) is not None and not isinstance(extract.yaml, _CYaml):
        extract.yaml = _CYaml()  # type: ignore[assignment]


def wrap_in_place(owner: Any, name: str, wrap: Callable[[Any], Any]) -> None:
    """`owner.name` wrapped once: a second call, or a dlt without it, leaves it as it is."""
    original = getattr(owner, name, None)
    if original is None or getattr(original, "__wrapped_original__", None) is not None:
        log.debug("dlt has no %s.%s to wrap, or it is wrapped already", getattr(owner, "__name__", owner), name)
        return
    setattr(owner, name, wrap(original))
