"""Vendor-specific commands (push, admin): each module here defines `register(cli)` and is found at start-up."""

from __future__ import annotations

import importlib
import pkgutil

import click


def register_all(cli: click.Group) -> None:
    for module in pkgutil.iter_modules(__path__):
        importlib.import_module(f"{__name__}.{module.name}").register(cli)
