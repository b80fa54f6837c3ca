"""Every source against its simulator under each fault: the final tables equal a clean run's, row for row."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from simulators.harness import Faults
from tests.support import Loader

from .vendors import VENDORS, Vendor, snapshot, token_expiry

pytestmark = pytest.mark.slow  # chaos, kills, real services: `dev.py test --fast` leaves them out

# name -> (faults, extra env); every probability is per request, seeded, so a failure replays.
FAULTS: dict[str, tuple[Callable[[Vendor], Faults], Callable[[Vendor], dict[str, str]]]] = {
    "5xx_bursts": (lambda v: Faults(error_rate=0.3, seed=1, exempt_paths=v.token_paths), lambda v: {}),
    "timeouts": (
        lambda v: Faults(slow_rate=0.08, slow_seconds=0.6, seed=2, exempt_paths=v.token_paths),
        lambda v: {v.section("request_timeout"): "0.3"},
    ),
    "slow_answers": (
        lambda v: Faults(slow_rate=0.3, slow_seconds=0.03, seed=3, exempt_paths=v.token_paths),
        lambda v: {},
    ),
    "dropped_connections": (
        lambda v: Faults(drop_rate=0.12, drop_after_rate=0.12, seed=4, exempt_paths=v.token_paths),
        lambda v: {},
    ),
    "truncated_json": (lambda v: Faults(truncate_rate=0.25, seed=5, exempt_paths=v.token_paths), lambda v: {}),
    "rate_limit_refusals": (
        lambda v: Faults(rate_limit_rate=0.25, retry_after="0", seed=6, exempt_paths=v.token_paths),
        lambda v: {},
    ),
    "everything_at_once": (lambda v: Faults.chaos(0.3, seed=8, exempt_paths=v.token_paths), lambda v: {}),
}


@pytest.mark.parametrize("fault", sorted(FAULTS))
def test_tables_equal_a_clean_run_under_fault(
    vendor: Vendor, clean: dict[str, list[tuple[Any, ...]]], fault: str, tmp_path: Path
) -> None:
    make_faults, make_env = FAULTS[fault]
    with vendor.build(dataclasses.replace(make_faults(vendor), fault_first=True)) as server:
        loader = Loader(vendor.name, tmp_path, vendor.env(server, **make_env(vendor)))
        loader.run(vendor.start, vendor.end, resources=vendor.resources)
        injected = sum(1 for request in server.requests if request.fault)
    assert injected > 0, f"{fault}: the simulator injected nothing; the test proves nothing"
    assert_equal(snapshot(loader.database, vendor.name), clean)


def test_tables_equal_a_clean_run_when_tokens_expire(
    vendor: Vendor, clean: dict[str, list[tuple[Any, ...]]], tmp_path: Path
) -> None:
    if vendor.expire is None:
        pytest.skip(f"{vendor.name} issues no tokens: its configured token_auth does not expire")
    with vendor.build(Faults(exempt_paths=vendor.token_paths)) as server:
        loader = Loader(vendor.name, tmp_path, vendor.env(server))
        with token_expiry(vendor, server):
            loader.run(vendor.start, vendor.end, resources=vendor.resources)
        issued = tokens_issued(server)
    assert issued >= 2, "no token expired during the run (the source logged in only once)"
    assert_equal(snapshot(loader.database, vendor.name), clean)


@pytest.mark.parametrize(
    "vendor", sorted(name for name, spec in VENDORS.items() if spec.http200_error is not None), indirect=True
)  # the others answer errors with HTTP status codes, covered by the other faults
def test_http_200_error_bodies(vendor: Vendor, clean: dict[str, list[tuple[Any, ...]]], tmp_path: Path) -> None:
    """Webtrekk refuses over-limit requests with HTTP 200 and an error body; the run waits and repeats them."""
    assert vendor.http200_error is not None
    with vendor.build(Faults()) as server:
        vendor.http200_error(server)
        loader = Loader(vendor.name, tmp_path, vendor.env(server))
        loader.run(vendor.start, vendor.end, resources=vendor.resources)
        assert server.refusals == 3  # type: ignore[attr-defined]
    assert_equal(snapshot(loader.database, vendor.name), clean)


def assert_equal(got: dict[str, list[tuple[Any, ...]]], clean: dict[str, list[tuple[Any, ...]]]) -> None:
    assert sorted(got) == sorted(clean), "the fault run loaded other tables than the clean run"
    for table, rows in clean.items():
        assert len(got[table]) == len(rows), f"{table}: {len(got[table])} rows, the clean run {len(rows)}"
        assert got[table] == rows, f"{table}: rows differ from the clean run"


def tokens_issued(server: Any) -> int:
    store = getattr(server, "tokens", None) or server.tickets
    return int(store.issued)
