"""How a vendor plugs into the CLI and the demo: a `VendorSpec` in `sources/<vendor>/settings.py`.

Entries are import paths so a command imports only the vendor it runs.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


def load_object(path: str) -> Any:
    module_name, _, attribute = path.partition(":")
    return getattr(importlib.import_module(module_name), attribute)


@dataclass(frozen=True)
class VendorSpec:
    """`source` must accept `start_date` and `end_date` (the CLI's --start/--end); `check` takes no arguments and
    returns one line saying what it reached. The simulator and the demo's plan are `simulators.registry`'s."""

    name: str
    source: str  # "module:function" of the @dlt.source
    check: str  # "module:function" () -> str
    resources: tuple[str, ...]
    default_resources: tuple[str, ...] | None = None  # None: what the source selects itself
    summary: str = ""
    # Cheap resources that validate configuration against the account (e.g. the domain list, which names unknown
    # ids). The CLI reads them before creating a pipeline, so bad input writes nothing; sources define no requests
    # at definition time (a DAG parse must not call the vendor).
    preflight: tuple[str, ...] = ()
    # Resources named from config (e.g. Webtrekk's analysis_<name>): --resources accepts names with these prefixes.
    resource_prefixes: tuple[str, ...] = ()
    # "module:function" (windows: list[DateWindow], resources: list[str] | None, force: bool) -> str | None, called
    # before a backfill requests anything: it may refuse (raise ConfigError, e.g. a quota the range would exceed,
    # unless force) and may return a line for the summary. Config is resolved as for the source (dlt.config).
    before_backfill: str | None = None

    def source_function(self) -> Callable[..., Any]:
        return load_object(self.source)  # type: ignore[no-any-return]

    def check_function(self) -> Callable[[], str]:
        return load_object(self.check)  # type: ignore[no-any-return]
