"""Every vendor clickhaul knows, by name: each `sources/<vendor>/settings.py` that defines `VENDOR_SPEC`."""

from __future__ import annotations

import importlib
import pkgutil

import sources
from sources.common.errors import ConfigError
from sources.common.spec import VendorSpec

__all__ = ["VENDORS", "VendorSpec", "vendor"]


def discover() -> dict[str, VendorSpec]:
    found = []
    for module in pkgutil.iter_modules(sources.__path__):
        if not module.ispkg or module.name == "common":
            continue
        try:
            settings = importlib.import_module(f"sources.{module.name}.settings")
        except ModuleNotFoundError:
            continue
        spec = getattr(settings, "VENDOR_SPEC", None)
        if isinstance(spec, VendorSpec):
            found.append(spec)
    return {spec.name: spec for spec in sorted(found, key=lambda spec: spec.name)}


VENDORS: dict[str, VendorSpec] = discover()


def vendor(name: str) -> VendorSpec:
    try:
        return VENDORS[name]
    except KeyError:
        raise ConfigError(f"unknown source {name!r}: choose one of {', '.join(VENDORS)}") from None
