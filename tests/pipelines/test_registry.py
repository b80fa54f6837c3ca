from __future__ import annotations

import pytest

from pipelines.registry import VENDORS
from pipelines.runner import build_source, parse_resources
from sources.common.clock import today_utc
from sources.common.spec import DemoPlan
from tests.support import environment

pytestmark = pytest.mark.calendar  # the demo plans and the simulators' traffic end today


@pytest.mark.parametrize("name", list(VENDORS))
def test_declared_resources_match_the_source(name: str) -> None:
    """The CLI validates --resources against the spec before any request; the spec must tell the truth."""
    spec = VENDORS[name]
    simulator = spec.simulator_class()(port=0)
    with simulator:
        plan: DemoPlan = spec.demo_function()(simulator)
        with environment(plan.env):
            source = build_source(spec, start_date=plan.start, end_date=plan.end, **plan.source_kwargs)
    named = set(source.resources.keys())
    from_config = {name for name in named if spec.resource_prefixes and name.startswith(spec.resource_prefixes)}
    # every resource the source can yield is declared (or config-named), so --resources can check names up front
    assert named - from_config <= set(spec.resources)
    assert parse_resources(spec, sorted(named)) == sorted(named)
    assert plan.start <= plan.end <= today_utc()
