"""Which accounts of a vendor a command works for. Read from the TOML files and the environment as dlt's providers
would, without importing dlt: `clickhaul status` lists every account's pipeline in a fraction of a second."""

from __future__ import annotations

import os
from collections.abc import Mapping

from sources.common.accounts import DEFAULT_ACCOUNT, check_account_name
from sources.common.errors import ConfigError

from . import dlt_files


def declared_accounts(vendor: str, environ: Mapping[str, str] | None = None) -> list[str]:
    """Names under `[sources.<vendor>.accounts]` in .dlt/*.toml and in SOURCES__<VENDOR>__ACCOUNTS__<NAME>__<FIELD>
    variables, sorted; empty when the vendor has only its own section."""
    names: set[str] = set()
    for table in dlt_files.toml_values(f"sources.{vendor}.accounts"):
        if isinstance(table, Mapping):
            names.update(str(name) for name, value in table.items() if isinstance(value, Mapping))
    prefix = f"SOURCES__{vendor.upper()}__ACCOUNTS__"
    for key in environ if environ is not None else os.environ:
        if key.startswith(prefix) and "__" in key[len(prefix) :]:
            names.add(key[len(prefix) :].split("__", 1)[0].lower())
    for name in names:
        check_account_name(vendor, name)
    return sorted(names)


def accounts_to_run(vendor: str, account: str | None = None) -> list[str]:
    """`--account NAME`: that account; without it every declared account, or `default` when none are declared."""
    declared = declared_accounts(vendor)
    if account is None:
        return declared or [DEFAULT_ACCOUNT]
    if account in declared or (account == DEFAULT_ACCOUNT and not declared):
        return [account]
    known = ", ".join(declared) if declared else f"only {DEFAULT_ACCOUNT} (no [sources.{vendor}.accounts.*] declared)"
    raise ConfigError(
        f"--account {account!r} is not an account of {vendor}: configured are {known}; declare it as "
        f"[sources.{vendor}.accounts.{account}] in .dlt/secrets.toml or SOURCES__{vendor.upper()}__ACCOUNTS__"
        f"{account.upper()}__<SETTING> variables"
    )
