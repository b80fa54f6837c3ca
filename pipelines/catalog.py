"""What a source loads, read from its dlt resources without a request: `clickhaul resources` and `run --dry-run`.

A source validates its configuration when it is defined, so where credentials are not configured yet, harmless
placeholders stand in for them: defining a source makes no request (a DAG parse must not call the vendor).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import dlt

from sources.common.config import environment
from sources.common.incremental import day_cursor_of

from .registry import VendorSpec

# Stand-ins for settings a source needs to be defined at all, used only where nothing is configured.
PLACEHOLDERS: dict[str, dict[str, str]] = {
    "pirsch": {"CLIENT_ID": "placeholder", "CLIENT_SECRET": "placeholder"},
    "webtrekk": {"CUSTOMER_ID": "placeholder", "LOGIN": "placeholder", "PASSWORD": "placeholder"},
    "umami": {"BASE_URL": "https://umami.invalid", "API_KEY": "placeholder"},
    "opentracker": {"SITES": "example.com", "LOGIN": "placeholder", "PASSWORD": "placeholder"},
    "matomo": {"BASE_URL": "https://matomo.invalid", "TOKEN_AUTH": "placeholder"},
}


@dataclass(frozen=True)
class ResourceInfo:
    name: str
    table: str
    primary_key: list[str]
    write_disposition: str
    selected: bool
    incremental: bool  # day-based: continues from its saved watermarks


def configured(vendor: str, key: str) -> bool:
    """Is `key` set for the current account: in its own section, or in the vendor section it falls back to?"""
    from sources.common.accounts import account_section

    names = {f"{account_section(vendor)}.{key.lower()}", f"sources.{vendor}.{key.lower()}"}
    for name in sorted(names):
        for provider in (dlt.secrets, dlt.config):
            try:
                if provider.get(name) not in (None, ""):
                    return True
            except Exception:
                continue
    return False


def placeholders(spec: VendorSpec) -> dict[str, str]:
    """Environment variables for the settings a source cannot be defined without and that are not configured."""
    return {
        f"SOURCES__{spec.name.upper()}__{key}": value
        for key, value in PLACEHOLDERS.get(spec.name, {}).items()
        if not configured(spec.name, key)
    }


def defined_source(spec: VendorSpec, **kwargs: Any) -> Any:
    """The vendor's source as configured, with placeholders where credentials are missing; no request is made."""
    from .runner import build_source

    with environment(placeholders(spec)):
        return build_source(spec, preflight=False, **kwargs)


def primary_key(resource: Any) -> list[str]:
    key = resource._hints.get("primary_key") or ()
    return [key] if isinstance(key, str) else [str(part) for part in key]


def resource_table(spec: VendorSpec, source_kwargs: Mapping[str, Any] | None = None) -> list[ResourceInfo]:
    source = defined_source(spec, **(source_kwargs or {}))
    found = []
    for name, resource in source.resources.items():
        table = resource.table_name if isinstance(resource.table_name, str) else name
        found.append(
            ResourceInfo(
                name=name,
                table=table,
                primary_key=primary_key(resource),
                write_disposition=str(resource.write_disposition),
                selected=bool(resource.selected),
                incremental=day_cursor_of(resource) is not None,
            )
        )
    return found
