"""What `clickhaul demo` and `clickhaul simulate` start for each vendor: its simulator and the plan that points a
run at it. The demo and the simulators live beside the product: nothing in `sources/` or `destinations/` names
them."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from sources.common.spec import load_object


@dataclass(frozen=True)
class DemoPlan:
    """How the demo points a source at its simulator: config as environment variables, the days to load, and the
    dbt variables the marts need to label the simulated account."""

    env: Mapping[str, str]
    start: dt.date
    end: dt.date
    source_kwargs: Mapping[str, Any] = field(default_factory=dict)
    dbt_vars: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Simulated:
    simulator: str  # "module:Class", constructible with keyword `port` only
    demo: str  # "module:function" (the started simulator) -> DemoPlan

    def simulator_class(self) -> Callable[..., Any]:
        return load_object(self.simulator)  # type: ignore[no-any-return]

    def demo_plan(self, simulator: Any) -> DemoPlan:
        return load_object(self.demo)(simulator)  # type: ignore[no-any-return]


# In the demo's order: the smallest loads first.
VENDORS: dict[str, Simulated] = {
    "pirsch": Simulated("simulators.pirsch:PirschSimulator", "simulators.pirsch:demo_plan"),
    "webtrekk": Simulated(
        "simulators.webtrekk_analytics:WebtrekkDemoSimulator", "simulators.webtrekk_analytics:demo_plan"
    ),
    "opentracker": Simulated("simulators.opentracker:OpentrackerSimulator", "simulators.opentracker:demo_plan"),
    "umami": Simulated("simulators.umami:UmamiSimulator", "simulators.umami:demo_plan"),
    # The demo reads Matomo back after pushing Opentracker's sessions to it (pipelines.demo.replay_into_matomo).
    "matomo": Simulated("simulators.matomo:MatomoDemoSimulator", "simulators.matomo:demo_plan"),
}


def simulated(vendor: str) -> Simulated:
    return VENDORS[vendor]
