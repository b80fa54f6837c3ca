"""Where and how a load goes, the same for `run` and `backfill`: built once (from the CLI's flags, or by a caller)
and passed along whole, so the two commands cannot drift apart."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Literal

from sources.common.monitor import ProgressMode

OnPending = Literal["load", "drop", "fail"]


@dataclass(frozen=True)
class LoadOptions:
    resources: str | Sequence[str] | None = None  # "a,b" or names; checked against the source's resources
    destination: str = "duckdb"
    database: str | None = None  # the DuckDB file (`warehouse.resolve_warehouse` finds it when None)
    dataset: str | None = None  # default: the source's name
    pipeline_name: str | None = None  # default: clickhaul_<source>
    pipelines_dir: str | None = None  # default: dlt's data directory
    progress: ProgressMode = "auto"
    source_kwargs: Mapping[str, Any] = field(default_factory=dict)  # explicit source settings (tests, the demo)
    destination_config: Any = None  # a dlt destination object instead of the warehouse rule (the demo, tests)
    on_pending: OnPending = "load"  # load packages a failed run left behind
    force: bool = False  # override safety checks (range size, a vendor's quota)
    publish: str | None = None  # a read-only copy of the DuckDB file to replace after each load

    def __post_init__(self) -> None:
        object.__setattr__(self, "source_kwargs", MappingProxyType(dict(self.source_kwargs or {})))

    @classmethod
    def of(cls, options: LoadOptions | None, **changes: Any) -> LoadOptions:
        """`options` with `changes`; keyword arguments alone (the older call style) build one."""
        from dataclasses import replace

        return replace(options or cls(), **changes)
