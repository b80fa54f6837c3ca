from __future__ import annotations

import pytest

from pipelines.registry import VENDORS
from pipelines.runner import build_source, parse_resources
from simulators.registry import DemoPlan, simulated
from sources.common.clock import today_utc
from tests.support import environment

pytestmark = pytest.mark.calendar  # the demo plans and the simulators' traffic end today


@pytest.mark.parametrize("name", list(VENDORS))
def test_declared_resources_match_the_source(name: str) -> None:
    """The CLI validates --resources against the spec before any request; the spec must tell the truth."""
    spec = VENDORS[name]
    simulator = simulated(name).simulator_class()(port=0)
    with simulator:
        plan: DemoPlan = simulated(name).demo_plan(simulator)
        with environment(plan.env):
            source = build_source(spec, start_date=plan.start, end_date=plan.end, **plan.source_kwargs)
    named = set(source.resources.keys())
    from_config = {name for name in named if spec.resource_prefixes and name.startswith(spec.resource_prefixes)}
    # every resource the source can yield is declared (or config-named), so --resources can check names up front
    assert named - from_config <= set(spec.resources)
    assert parse_resources(spec, sorted(named)) == sorted(named)
    assert plan.start <= plan.end <= today_utc()


def test_every_vendor_has_a_simulator_and_the_product_names_none() -> None:
    """The demo and the simulators live beside the product: sources/ and destinations/ import nothing of them."""
    from simulators.registry import VENDORS as SIMULATED
    from tests.support import ROOT

    assert set(SIMULATED) == set(VENDORS)
    for layer in ("sources", "destinations"):
        for path in (ROOT / layer).rglob("*.py"):
            assert "simulators" not in {
                line.split()[1].split(".")[0]
                for line in path.read_text().splitlines()
                if line.startswith(("from ", "import "))
            }, path
