"""A vendor's named accounts: `[sources.<vendor>.accounts.<name>]` (or `SOURCES__<VENDOR>__ACCOUNTS__<NAME>__*`).

An agency has many logins per vendor. Each account is the vendor's settings resolved one level deeper, so a
setting missing under `[sources.pirsch.accounts.client_a]` falls back to `[sources.pirsch]` (shared defaults such
as the timezone). Without any `accounts` table the vendor section itself is the one implicit account `default`,
exactly as before accounts existed.

Which account a process is working for is a context (`use_account`): `VendorConfig.from_config` reads it, so every
source, check and client built inside resolves that account's settings without being told.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

from .errors import ConfigError

DEFAULT_ACCOUNT = "default"  # the vendor section's own credentials, when no accounts are declared
ACCOUNT_COLUMN = "account"
_NAME = re.compile(r"^[a-z0-9][a-z0-9_]{0,39}$")

_current: ContextVar[str | None] = ContextVar("clickhaul_account", default=None)


def current_account() -> str | None:
    """The named account being worked on; None for the implicit `default` (the vendor section itself)."""
    return _current.get()


def account_sections(vendor: str) -> tuple[str, ...]:
    """The config path below `sources` of the current account: ("pirsch",) or ("pirsch", "accounts", "client_a")."""
    name = current_account()
    return (vendor, "accounts", name) if name else (vendor,)


@contextmanager
def use_account(name: str | None) -> Iterator[None]:
    """Resolve every vendor setting in this block for account `name` (None or `default`: the vendor section)."""
    token = _current.set(None if name in (None, DEFAULT_ACCOUNT) else name)
    try:
        yield
    finally:
        _current.reset(token)


def declared_accounts(vendor: str, environ: Mapping[str, str] | None = None) -> list[str]:
    """Names under `[sources.<vendor>.accounts]` in .dlt/*.toml and in SOURCES__<VENDOR>__ACCOUNTS__<NAME>__<FIELD>
    variables, sorted; empty when the vendor has only its own section."""
    import dlt

    names: set[str] = set()
    for provider in (dlt.config, dlt.secrets):
        try:
            table: Any = provider.get(f"sources.{vendor}.accounts")
        except Exception:
            table = None
        if isinstance(table, Mapping):
            names.update(str(name) for name, value in table.items() if isinstance(value, Mapping))
    prefix = f"SOURCES__{vendor.upper()}__ACCOUNTS__"
    for key in environ if environ is not None else os.environ:
        if key.startswith(prefix) and "__" in key[len(prefix) :]:
            names.add(key[len(prefix) :].split("__", 1)[0].lower())
    for name in names:
        check_account_name(vendor, name)
    return sorted(names)


def check_account_name(vendor: str, name: str) -> str:
    if name == DEFAULT_ACCOUNT or not _NAME.match(name):
        reason = "is reserved for the vendor section itself" if name == DEFAULT_ACCOUNT else "is not a valid name"
        raise ConfigError(
            f"account {name!r} of {vendor} {reason}: name accounts with lowercase letters, digits and '_' "
            f"(at most 40), as in [sources.{vendor}.accounts.client_a]"
        )
    return name


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
