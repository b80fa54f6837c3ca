"""Every vendor clickhaul knows, by name: each `sources/<vendor>/settings.py` that defines `VENDOR_SPEC`.

Names are found by looking at the files, and a vendor's spec is imported when it is first asked for: importing
`sources.<vendor>.settings` runs the vendor package, which defines its dlt source and so imports dlt (about half a
second), which `clickhaul --help`, `status` and a run of another vendor do not need.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator, Mapping
from functools import cache
from pathlib import Path

import sources
from sources.common.errors import ConfigError
from sources.common.spec import VendorSpec

__all__ = ["VENDORS", "VendorSpec", "vendor"]


def discover() -> tuple[str, ...]:
    """The vendor packages: each folder of `sources` with a settings module (common is the shared layer)."""
    return tuple(
        sorted(
            folder.name
            for root in sources.__path__
            for folder in Path(root).iterdir()
            if folder.name != "common" and (folder / "__init__.py").is_file() and (folder / "settings.py").is_file()
        )
    )


@cache
def load_spec(name: str) -> VendorSpec:
    spec = getattr(importlib.import_module(f"sources.{name}.settings"), "VENDOR_SPEC", None)
    if not isinstance(spec, VendorSpec) or spec.name != name:
        raise ConfigError(f"sources/{name}/settings.py defines no VENDOR_SPEC named {name!r}")
    return spec


class Vendors(Mapping[str, VendorSpec]):
    """Name -> spec; iterating gives the names without importing any vendor."""

    def __init__(self, names: tuple[str, ...]) -> None:
        self.names = names

    def __getitem__(self, name: str) -> VendorSpec:
        if name not in self.names:
            raise KeyError(name)
        return load_spec(name)

    def __iter__(self) -> Iterator[str]:
        return iter(self.names)

    def __len__(self) -> int:
        return len(self.names)


VENDORS = Vendors(discover())


def vendor(name: str) -> VendorSpec:
    try:
        return VENDORS[name]
    except KeyError:
        raise ConfigError(f"unknown source {name!r}: choose one of {', '.join(VENDORS)}") from None
