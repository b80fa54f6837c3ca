"""Every vendor clickhaul knows, by name. Entries are import paths so a command loads only the vendor it runs.

To add a vendor: give it a `VendorSpec` here. Its source function must accept `start_date` and `end_date`
(the CLI's --start/--end), its check function takes no arguments and returns a one-line description of what it
reached, and its demo function takes the started simulator and returns a `DemoPlan`.
"""

from __future__ import annotations

import datetime as dt
import importlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from sources.common.errors import ConfigError


def load_object(path: str) -> Any:
    module_name, _, attribute = path.partition(":")
    return getattr(importlib.import_module(module_name), attribute)


@dataclass(frozen=True)
class DemoPlan:
    """How the demo points a source at its simulator: config as environment variables, and the days to load."""

    env: Mapping[str, str]
    start: dt.date
    end: dt.date
    source_kwargs: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class VendorSpec:
    name: str
    source: str  # "module:function" of the @dlt.source
    check: str  # "module:function" () -> str
    simulator: str  # "module:Class" of the simulator, constructed with no arguments for `simulate`
    demo: str  # "module:function" (simulator) -> DemoPlan
    resources: tuple[str, ...]
    default_resources: tuple[str, ...] | None = None  # None: all
    summary: str = ""

    def source_function(self) -> Callable[..., Any]:
        return load_object(self.source)  # type: ignore[no-any-return]

    def check_function(self) -> Callable[[], str]:
        return load_object(self.check)  # type: ignore[no-any-return]

    def simulator_class(self) -> Callable[..., Any]:
        return load_object(self.simulator)  # type: ignore[no-any-return]

    def demo_function(self) -> Callable[[Any], DemoPlan]:
        return load_object(self.demo)  # type: ignore[no-any-return]


VENDORS: dict[str, VendorSpec] = {}


def register(spec: VendorSpec) -> VendorSpec:
    VENDORS[spec.name] = spec
    return spec


def vendor(name: str) -> VendorSpec:
    try:
        return VENDORS[name]
    except KeyError:
        raise ConfigError(f"unknown source {name!r}: choose one of {', '.join(sorted(VENDORS))}") from None


# --- the vendors ------------------------------------------------------------------------------------------
from sources.pirsch.settings import RESOURCE_NAMES as _PIRSCH_RESOURCES  # noqa: E402

register(
    VendorSpec(
        name="pirsch",
        source="sources.pirsch:pirsch_source",
        check="sources.pirsch:check_connection",
        simulator="simulators.pirsch:PirschSimulator",
        demo="simulators.pirsch:demo_plan",
        resources=_PIRSCH_RESOURCES,
        summary="Pirsch date-range statistics per domain and day",
    )
)
