"""The simulator answers every recorded request as the real Umami 2.20.2 and 3.1.0 did: the same status, the same
fields and value types, the same error bodies, and for the seeded traffic the same figures."""

from __future__ import annotations

import functools

import pytest

from .recorded import Replayed, recording, replay

CASES = [(version, index, entry["name"]) for version in ("2", "3") for index, entry in enumerate(recording(version))]


@functools.cache
def replayed(version: str) -> list[Replayed]:
    """One replay per version and process: the entries depend on each other (login, website, seeding)."""
    return replay(version)


@pytest.mark.parametrize(
    ("version", "index"),
    [(version, index) for version, index, _ in CASES],
    ids=[f"umami{version}-{index:03d}-{name[:60]}" for version, index, name in CASES],
)
def test_simulator_answers_as_recorded(version: str, index: int) -> None:
    result = replayed(version)[index]
    assert result.problems == [], f"{result.entry['name']}: " + "; ".join(result.problems)
